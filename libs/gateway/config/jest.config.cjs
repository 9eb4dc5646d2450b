module.exports = {
  displayName: 'gateway-config',
  preset: '../../../jest.preset.js',
  coverageDirectory: '../../../coverage/libs/gateway/config',
};
