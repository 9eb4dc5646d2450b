module.exports = {
  displayName: 'gateway-server',
  preset: '../../../jest.preset.js',
  coverageDirectory: '../../../coverage/libs/gateway/server',
};
