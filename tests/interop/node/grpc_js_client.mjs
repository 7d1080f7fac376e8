// A @grpc/grpc-js client at its default settings, for the interop tests
// (tests/tests/e2e/interop.rs).
//
//     node grpc_js_client.mjs TARGET ACCOUNT PROTO_DIR
//
// TARGET is a channel target as a user would write it (`unix:/path`); no channel option is set.
// Calls health, reflection (v1 and v1alpha), ListAccounts, GetToken, and reads one Watch event
// (caused by a forced refresh), then prints one JSON object with what it saw. Exits non-zero on
// any failure.

import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const [target, account, protoDir] = process.argv.slice(2);
const TIMEOUT_MS = 15_000;
const LOAD = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

// The standard health and reflection services, reduced to the messages used here (grpc-js ships
// no clients for them).
const STANDARD = `
syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}
service Health { rpc Check(HealthCheckRequest) returns (HealthCheckResponse); }
`;
const reflection = (version) => `
syntax = "proto3";
package grpc.reflection.${version};
message ServerReflectionRequest {
  string host = 1;
  oneof message_request { string file_containing_symbol = 4; string list_services = 7; }
}
message FileDescriptorResponse { repeated bytes file_descriptor_proto = 1; }
message ServiceResponse { string name = 1; }
message ListServiceResponse { repeated ServiceResponse service = 1; }
message ErrorResponse { int32 error_code = 1; string error_message = 2; }
message ServerReflectionResponse {
  string valid_host = 1;
  ServerReflectionRequest original_request = 2;
  oneof message_response {
    FileDescriptorResponse file_descriptor_response = 4;
    ListServiceResponse list_services_response = 6;
    ErrorResponse error_response = 7;
  }
}
service ServerReflection {
  rpc ServerReflectionInfo(stream ServerReflectionRequest) returns (stream ServerReflectionResponse);
}
`;

function loadText(name, text) {
  const dir = mkdtempSync(join(tmpdir(), 'authctl-interop-'));
  const file = join(dir, name);
  writeFileSync(file, text);
  return grpc.loadPackageDefinition(protoLoader.loadSync(file, LOAD));
}

const deadline = () => new Date(Date.now() + TIMEOUT_MS);
const unary = (client, method, req) =>
  new Promise((resolve, reject) =>
    client[method](req, { deadline: deadline() }, (err, res) => (err ? reject(err) : resolve(res))),
  );

function listServices(Reflection) {
  const client = new Reflection(target, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const names = [];
    const call = client.ServerReflectionInfo({ deadline: deadline() });
    call.on('data', (r) => names.push(...r.list_services_response.service.map((s) => s.name)));
    call.on('error', reject);
    call.on('end', () => {
      client.close();
      resolve(names.sort());
    });
    call.write({ list_services: '' });
    call.end();
  });
}

const health = loadText('health.proto', STANDARD).grpc.health.v1;
const v1 = loadText('reflection_v1.proto', reflection('v1')).grpc.reflection.v1;
const v1alpha = loadText('reflection_v1alpha.proto', reflection('v1alpha')).grpc.reflection.v1alpha;
const { Agent } = grpc.loadPackageDefinition(
  protoLoader.loadSync('authctl/agent/v1/agent.proto', { ...LOAD, includeDirs: [protoDir] }),
).authctl.agent.v1;

const require = createRequire(import.meta.url);
const out = {
  'grpc-js': JSON.parse(readFileSync(require.resolve('@grpc/grpc-js/package.json'), 'utf8')).version,
};

const healthClient = new health.Health(target, grpc.credentials.createInsecure());
out.health = (await unary(healthClient, 'Check', { service: 'authctl.agent.v1.Agent' })).status;
healthClient.close();
out.reflection_v1 = await listServices(v1.ServerReflection);
out.reflection_v1alpha = await listServices(v1alpha.ServerReflection);

const agent = new Agent(target, grpc.credentials.createInsecure());
out.accounts = (await unary(agent, 'ListAccounts', {})).accounts.map((a) => a.name);
const token = await unary(agent, 'GetToken', { account });
out.token = token.access_token;
out.token_account = token.account;

out.watch = await new Promise((resolve, reject) => {
  const watch = agent.Watch({ account }, { deadline: deadline() });
  watch.on('error', (e) => {
    if (e.code !== grpc.status.CANCELLED) reject(e);
  });
  watch.on('data', (ev) => {
    watch.cancel();
    resolve({ account: ev.account, kind: ev.kind });
  });
  // The agent subscribed before it answered with headers: now a forced refresh is seen.
  watch.on('metadata', () => {
    unary(agent, 'GetToken', { account, force_refresh: true }).catch(reject);
  });
});
agent.close();
console.log(JSON.stringify(out));
