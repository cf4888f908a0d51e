// Stands in for src/proxy-loader.ts inside dist/ereceipt-auth.js: the proxy tunnel
// (https-proxy-agent) lives in proxy-agent.js beside the bundle and is loaded only
// when a proxy is in use, so a terminal that reaches the service directly never pays
// for it.
const { join } = require('node:path');

exports.loadProxyAgent = async () => require(join(__dirname, 'proxy-agent.js'));
