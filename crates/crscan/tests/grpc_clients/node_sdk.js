// Drives crscan's gRPC API over TLS with the official Node SDK
// (@yandex-cloud/nodejs-sdk), as crates/crscan/tests/grpc_sdk.rs runs it, and compares
// the answers with the REST answers for the same objects. The Node SDK has no
// discovery (a static endpoint per service), so each client gets crscan's address,
// and the OAuth-style exchange is done with the SDK's IamTokenService client first.
//
// Usage: node node_sdk.js CONFIG_JSON (as python_sdk.py). Prints a JSON object of
// facts on stdout; exits non-zero on the first difference.
'use strict';

const fs = require('fs');
const https = require('https');
const { Session, cloudApi, serviceClients, waitForOperation, decodeMessage } = require('@yandex-cloud/nodejs-sdk');

const config = JSON.parse(process.argv[2]);
const ca = fs.readFileSync(config.ca);
const facts = { checked: [] };

function fail(message) {
  console.error(`FAILED: ${message}`);
  process.exit(1);
}

function rest(path, token) {
  return new Promise((resolve, reject) => {
    const request = https.get(`${config.rest}${path}`, { ca, headers: { authorization: `Bearer ${token}` } }, (response) => {
      let body = '';
      response.on('data', (chunk) => { body += chunk; });
      response.on('end', () => resolve(JSON.parse(body)));
    });
    request.on('error', reject);
  });
}

// Protobuf JSON without the fields proto3 leaves out, numbers as strings: the form in
// which a ts-proto `toJSON` and crscan's REST JSON can be compared.
function canonical(value) {
  if (Array.isArray(value)) {
    const items = value.map(canonical).filter((item) => item !== undefined);
    return items.length ? items : undefined;
  }
  if (value instanceof Date) return value.toISOString();
  if (value && typeof value === 'object') {
    const out = {};
    for (const key of Object.keys(value).sort()) {
      if (key === '$type') continue;
      const item = canonical(value[key]);
      if (item !== undefined) out[key] = item;
    }
    return Object.keys(out).length ? out : undefined;
  }
  if (value === '' || value === 0 || value === '0' || value === false || value === null || value === undefined) {
    return undefined;
  }
  if (typeof value === 'number') return String(value);
  return value;
}

// The REST JSON is read into the client's own message type first, as the Python
// test parses it: this SDK's descriptors are older than the API's (its
// PackageVulnerability has no `origin` and `type`), and it drops what it does not know
// from gRPC answers alike.
function same(name, type, message, restJson) {
  const grpcJson = canonical(type.toJSON(message));
  const restCanonical = canonical(type.toJSON(type.fromJSON(restJson)));
  if (JSON.stringify(grpcJson) !== JSON.stringify(restCanonical)) {
    fail(`${name}: gRPC and REST differ\n gRPC: ${JSON.stringify(grpcJson)}\n REST: ${JSON.stringify(restCanonical)}`);
  }
  facts.checked.push(name);
}

async function main() {
  const cr = cloudApi.containerregistry;
  const endpoint = config.endpoint;
  // The token exchange, with the SDK's own IamTokenService client.
  const bootstrap = new Session({ iamToken: 'none', ssl: { rootCerts: ca } });
  const iam = bootstrap.client(serviceClients.IamTokenServiceClient, endpoint);
  const created = await iam.create(cloudApi.iam.iam_token_service.CreateIamTokenRequest.fromPartial({
    yandexPassportOauthToken: config.admin_token,
  }));
  if (!/^t1\.[A-Za-z0-9_-]+=*\.[A-Za-z0-9_-]{86}=*$/.test(created.iamToken)) fail(`IAM token ${created.iamToken}`);
  const session = new Session({ iamToken: created.iamToken, ssl: { rootCerts: ca } });

  const images = session.client(serviceClients.CrImageServiceClient, endpoint);
  const scanner = session.client(serviceClients.ScannerServiceClient, endpoint);
  const list = await images.list(cr.image_service.ListImagesRequest.fromPartial({ folderId: config.folder_id }));
  same('ImageService.List', cr.image_service.ListImagesResponse, list,
    await rest(`/container-registry/v1/images?folderId=${config.folder_id}`, config.admin_token));

  const operation = await scanner.scan(cr.scanner_service.ScanRequest.fromPartial({ imageId: config.image_id }));
  const done = await waitForOperation(operation, session, 120000, endpoint);
  const result = decodeMessage(done.response);
  const meta = decodeMessage(done.metadata);
  same('ScannerService.Scan response', cr.scanner.ScanResult, result,
    await rest(`/container-registry/v1/scans/${meta.scanResultId}`, config.admin_token));
  facts.scan = cr.scanner.scanResult_StatusToJSON(result.status);

  const last = await scanner.getLast(cr.scanner_service.GetLastScanResultRequest.fromPartial({ imageId: config.image_id }));
  same('ScannerService.GetLast', cr.scanner.ScanResult, last,
    await rest(`/container-registry/v1/images/${config.image_id}:lastScanResult`, config.admin_token));
  const stats = cr.scanner.VulnerabilityStats.toJSON(last.vulnerabilities);
  facts.stats = {};
  for (const [key, value] of Object.entries(stats)) {
    if (Number(value) !== 0) facts.stats[key] = String(value);
  }

  const filter = 'severity="CRITICAL"';
  const critical = await scanner.listVulnerabilities(cr.scanner_service.ListVulnerabilitiesRequest.fromPartial({
    scanResultId: last.id, filter,
  }));
  same('ScannerService.ListVulnerabilities severity=CRITICAL', cr.scanner_service.ListVulnerabilitiesResponse, critical,
    await rest(`/container-registry/v1/scans/${last.id}:listVulnerabilities?filter=${encodeURIComponent(filter)}`, config.admin_token));
  facts.critical = critical.vulnerabilities.length;
  console.log(JSON.stringify(facts));
}

main().catch((error) => fail(error && error.stack ? error.stack : String(error)));
