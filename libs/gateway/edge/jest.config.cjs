module.exports = {
  displayName: 'gateway-edge',
  preset: '../../../jest.preset.js',
  coverageDirectory: '../../../coverage/libs/gateway/edge',
};
