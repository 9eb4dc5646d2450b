module.exports = {
  displayName: 'gateway-status',
  preset: '../../../jest.preset.js',
  coverageDirectory: '../../../coverage/libs/gateway/status',
};
