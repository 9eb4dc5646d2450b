module.exports = {
  displayName: 'gateway-router',
  preset: '../../../jest.preset.js',
  coverageDirectory: '../../../coverage/libs/gateway/router',
};
