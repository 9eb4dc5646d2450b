module.exports = {
  displayName: 'gateway-proxy',
  preset: '../../../jest.preset.js',
  coverageDirectory: '../../../coverage/libs/gateway/proxy',
};
