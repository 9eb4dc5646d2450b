module.exports = {
  displayName: 'gateway-upstream',
  preset: '../../../jest.preset.js',
  coverageDirectory: '../../../coverage/libs/gateway/upstream',
};
