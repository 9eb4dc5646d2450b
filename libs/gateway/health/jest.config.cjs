module.exports = {
  displayName: 'gateway-health',
  preset: '../../../jest.preset.js',
  coverageDirectory: '../../../coverage/libs/gateway/health',
};
