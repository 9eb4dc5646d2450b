module.exports = {
  displayName: 'gateway-observability',
  preset: '../../../jest.preset.js',
  coverageDirectory: '../../../coverage/libs/gateway/observability',
};
