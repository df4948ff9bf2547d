"""Drives crscan's gRPC API with the official Python SDK (`yandexcloud`), as
crates/crscan/tests/grpc_sdk.rs runs it, and compares every gRPC answer with the REST
answer for the same object: the REST JSON, parsed as the protobuf JSON of the same
message, must equal the gRPC message.

Usage: python_sdk.py CONFIG_JSON; CONFIG_JSON names the mode ("tls" or "insecure"),
the gRPC endpoint, the REST base URL, the CA file (tls), tokens and the image to use.
Prints one JSON object of facts for the Rust test (request ids, counts) on stdout;
exits non-zero with a message on the first difference.
"""

import json
import re
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import grpc
import yandexcloud
from google.protobuf import field_mask_pb2, json_format
from google.rpc import error_details_pb2, status_pb2
from yandex.cloud.containerregistry.v1 import (
    image_pb2,
    image_service_pb2,
    image_service_pb2_grpc,
    registry_pb2,
    registry_service_pb2,
    registry_service_pb2_grpc,
    repository_pb2,
    repository_service_pb2,
    repository_service_pb2_grpc,
    scan_policy_pb2,
    scan_policy_service_pb2,
    scan_policy_service_pb2_grpc,
    scanner_pb2,
    scanner_service_pb2,
    scanner_service_pb2_grpc,
)
from yandex.cloud.endpoint import api_endpoint_service_pb2, api_endpoint_service_pb2_grpc
from yandex.cloud.iam.v1 import iam_token_service_pb2, iam_token_service_pb2_grpc
from yandex.cloud.operation import operation_pb2, operation_service_pb2, operation_service_pb2_grpc

CONFIG = json.loads(sys.argv[1])
MODE = CONFIG["mode"]
FACTS = {"checked": []}
CA = open(CONFIG["ca"], "rb").read() if MODE == "tls" else None
SSL_CONTEXT = ssl.create_default_context(cafile=CONFIG["ca"]) if MODE == "tls" else None


def fail(message):
    print(f"FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def rest(method, path, token, body=None):
    """Calls the REST API; returns (HTTP status, JSON body)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(CONFIG["rest"] + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, context=SSL_CONTEXT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def same(name, grpc_message, rest_json):
    """The REST JSON, read as protobuf JSON of the gRPC message's type, equals it."""
    parsed = type(grpc_message)()
    json_format.ParseDict(rest_json, parsed)
    if parsed != grpc_message:
        fail(
            f"{name}: gRPC and REST differ\n gRPC: {json_format.MessageToJson(grpc_message)}\n"
            f" REST: {json.dumps(rest_json)}"
        )
    FACTS["checked"].append(name)


def metadata(token):
    return (("authorization", f"Bearer {token}"),)


ADMIN = CONFIG["admin_token"]
VIEWER = CONFIG["viewer_token"]

if MODE == "tls":
    sdk = yandexcloud.SDK(endpoint=CONFIG["endpoint"], root_certificates=CA, token=ADMIN)

    def client(stub):
        return sdk.client(stub)

    def call(method, request, token=None):
        return method(request)

else:
    sdk = yandexcloud.SDK(endpoint=CONFIG["endpoint"])

    def client(stub):
        return sdk.client(stub, endpoint=CONFIG["endpoint"], insecure=True)

    def call(method, request, token=ADMIN):
        return method(request, metadata=metadata(token))


def grpc_error(function):
    """Runs a call that must fail; returns (code, message, RequestInfo.request_id)."""
    try:
        function()
    except grpc.RpcError as error:
        request_id = ""
        for key, value in error.trailing_metadata() or ():
            if key == "grpc-status-details-bin":
                status = status_pb2.Status.FromString(value)
                check(status.code == error.code().value[0], "details code differs from grpc-status")
                for detail in status.details:
                    info = error_details_pb2.RequestInfo()
                    if detail.Unpack(info):
                        request_id = info.request_id
        return error.code(), error.details(), request_id
    fail("call did not fail")


def same_error(name, function, method, path, token, body=None):
    """A failing call answers the REST answer's code, message and RequestInfo."""
    code, message, request_id = grpc_error(function)
    status, rest_body = rest(method, path, token, body)
    check(code.value[0] == rest_body["code"], f"{name}: gRPC {code} but REST {rest_body}")
    check(message == rest_body["message"], f"{name}: gRPC {message!r} but REST {rest_body['message']!r}")
    rest_id = rest_body["details"][0]["requestId"]
    check(request_id.startswith("crr") and rest_id.startswith("crr"), f"{name}: request ids {request_id} {rest_id}")
    FACTS.setdefault("errors", {})[name] = {"code": code.name, "http": status, "request_id": request_id}
    return code


scanner = client(scanner_service_pb2_grpc.ScannerServiceStub)
images = client(image_service_pb2_grpc.ImageServiceStub)
repositories = client(repository_service_pb2_grpc.RepositoryServiceStub)
registries = client(registry_service_pb2_grpc.RegistryServiceStub)
operations = client(operation_service_pb2_grpc.OperationServiceStub)
image_id = CONFIG["image_id"]

if MODE == "tls":
    # ---- discovery and token exchange
    endpoints = sdk._channels.endpoints
    for needed in ("container-registry", "operation", "iam", "resource-manager", "endpoint"):
        check(endpoints.get(needed) == CONFIG["endpoint"], f"endpoint {needed}: {endpoints}")
    FACTS["endpoints"] = sorted(endpoints)
    channel = grpc.secure_channel(CONFIG["endpoint"], grpc.ssl_channel_credentials(CA))
    one = api_endpoint_service_pb2_grpc.ApiEndpointServiceStub(channel).Get(
        api_endpoint_service_pb2.GetApiEndpointRequest(api_endpoint_id="operation")
    )
    check(one.address == CONFIG["endpoint"], f"Get endpoint: {one}")
    iam = iam_token_service_pb2_grpc.IamTokenServiceStub(channel)
    created = iam.Create(iam_token_service_pb2.CreateIamTokenRequest(yandex_passport_oauth_token=ADMIN))
    check(
        re.fullmatch(r"t1\.[A-Za-z0-9_-]+=*\.[A-Za-z0-9_-]{86}=*", created.iam_token),
        f"IAM token shape: {created.iam_token}",
    )
    lifetime = created.expires_at.seconds - time.time()
    check(11.9 * 3600 < lifetime <= 12 * 3600, f"expires_at is {lifetime} s away")
    FACTS["iam_token_lifetime_hours"] = round(lifetime / 3600)
    status, body = rest("GET", f"/container-registry/v1/images/{image_id}", created.iam_token)
    check(status == 200, f"the issued IAM token is refused by REST: {status} {body}")
    code, _, _ = grpc_error(
        lambda: iam.Create(iam_token_service_pb2.CreateIamTokenRequest(yandex_passport_oauth_token="not-a-token"))
    )
    check(code == grpc.StatusCode.UNAUTHENTICATED, f"unknown OAuth token: {code}")
    code, message, _ = grpc_error(lambda: iam.Create(iam_token_service_pb2.CreateIamTokenRequest(jwt="a.b.c")))
    check(code == grpc.StatusCode.UNIMPLEMENTED and "jwt" in message, f"jwt: {code} {message}")
    FACTS["token_exchange"] = "ok"

# ---- listing registries, repositories and images
folder = CONFIG["folder_id"]
answer = call(registries.List, registry_service_pb2.ListRegistriesRequest(folder_id=folder))
same("RegistryService.List", answer, rest("GET", f"/container-registry/v1/registries?folderId={folder}", ADMIN)[1])
registry_id = answer.registries[0].id
answer = call(registries.Get, registry_service_pb2.GetRegistryRequest(registry_id=registry_id))
same("RegistryService.Get", answer, rest("GET", f"/container-registry/v1/registries/{registry_id}", ADMIN)[1])
answer = call(repositories.List, repository_service_pb2.ListRepositoriesRequest(registry_id=registry_id))
same(
    "RepositoryService.List",
    answer,
    rest("GET", f"/container-registry/v1/repositories?registryId={registry_id}", ADMIN)[1],
)
repository = answer.repositories[0]
answer = call(repositories.Get, repository_service_pb2.GetRepositoryRequest(repository_id=repository.id))
same("RepositoryService.Get", answer, rest("GET", f"/container-registry/v1/repositories/{repository.id}", ADMIN)[1])
answer = call(images.List, image_service_pb2.ListImagesRequest(registry_id=registry_id))
same("ImageService.List", answer, rest("GET", f"/container-registry/v1/images?registryId={registry_id}", ADMIN)[1])
FACTS["images"] = len(answer.images)
answer = call(images.Get, image_service_pb2.GetImageRequest(image_id=image_id))
same("ImageService.Get", answer, rest("GET", f"/container-registry/v1/images/{image_id}", ADMIN)[1])

# ---- Scan, waiting with the SDK's own waiter where the SDK has one
operation = call(scanner.Scan, scanner_service_pb2.ScanRequest(image_id=image_id))
check(operation.metadata.type_url.endswith("yandex.cloud.containerregistry.v1.ScanMetadata"), operation.metadata.type_url)
if MODE == "tls":
    result = sdk.wait_operation_and_get_result(
        operation, response_type=scanner_pb2.ScanResult, meta_type=scanner_service_pb2.ScanMetadata
    )
    scan_result = result.response
    scan_result_id = result.meta.scan_result_id
else:
    for _ in range(240):
        operation = call(operations.Get, operation_service_pb2.GetOperationRequest(operation_id=operation.id))
        if operation.done:
            break
        time.sleep(0.5)
    scan_result = scanner_pb2.ScanResult()
    check(operation.response.Unpack(scan_result), f"operation response: {operation}")
    scan_result_id = scan_result.id
check(scan_result.status == scanner_pb2.ScanResult.READY, f"scan: {scan_result}")
answer, grpc_call = operations.Get.with_call(
    operation_service_pb2.GetOperationRequest(operation_id=operation.id),
    **({} if MODE == "tls" else {"metadata": metadata(ADMIN)}),
)
poll = dict(grpc_call.initial_metadata()).get("x-operation-poll-interval")
check(poll is not None and 0 < int(poll) <= 10, f"x-operation-poll-interval: {poll}")
same("OperationService.Get", answer, rest("GET", f"/operations/{operation.id}", ADMIN)[1])
answer = call(scanner.Get, scanner_service_pb2.GetScanResultRequest(scan_result_id=scan_result_id))
same("ScannerService.Get", answer, rest("GET", f"/container-registry/v1/scans/{scan_result_id}", ADMIN)[1])
check(answer == scan_result, "the waiter's response differs from ScannerService.Get")
answer = call(scanner.GetLast, scanner_service_pb2.GetLastScanResultRequest(image_id=image_id))
same("ScannerService.GetLast", answer, rest("GET", f"/container-registry/v1/images/{image_id}:lastScanResult", ADMIN)[1])
answer = call(scanner.List, scanner_service_pb2.ListScanResultsRequest(image_id=image_id))
same("ScannerService.List", answer, rest("GET", f"/container-registry/v1/scans?imageId={image_id}", ADMIN)[1])
stats = scan_result.vulnerabilities
FACTS["stats"] = json_format.MessageToDict(stats)

# ---- ListVulnerabilities: paging, and the severity filter
token, pages, names = "", 0, []
while True:
    answer = call(
        scanner.ListVulnerabilities,
        scanner_service_pb2.ListVulnerabilitiesRequest(scan_result_id=scan_result_id, page_size=3, page_token=token),
    )
    query = urllib.parse.urlencode({"pageSize": 3, "pageToken": token})
    same(
        f"ScannerService.ListVulnerabilities page {pages + 1}",
        answer,
        rest("GET", f"/container-registry/v1/scans/{scan_result_id}:listVulnerabilities?{query}", ADMIN)[1],
    )
    names += [v.package.name for v in answer.vulnerabilities]
    pages += 1
    token = answer.next_page_token
    if not token:
        break
total = stats.critical + stats.high + stats.medium + stats.low + stats.negligible + stats.undefined
check(len(names) == total, f"paged {len(names)} findings, the stats count {total}")
check(pages > 1, f"{total} findings came in {pages} page")
FACTS["vulnerabilities"] = {"total": len(names), "pages": pages}
answer = call(
    scanner.ListVulnerabilities,
    scanner_service_pb2.ListVulnerabilitiesRequest(scan_result_id=scan_result_id, filter='severity="CRITICAL"'),
)
query = urllib.parse.urlencode({"filter": 'severity="CRITICAL"'})
same(
    "ScannerService.ListVulnerabilities severity=CRITICAL",
    answer,
    rest("GET", f"/container-registry/v1/scans/{scan_result_id}:listVulnerabilities?{query}", ADMIN)[1],
)
check(len(answer.vulnerabilities) == stats.critical, f"CRITICAL filter gave {len(answer.vulnerabilities)}")
check(all(v.severity == scanner_pb2.Vulnerability.CRITICAL for v in answer.vulnerabilities), "non-CRITICAL in filter")
FACTS["critical"] = len(answer.vulnerabilities)

# ---- error codes: missing id, malformed id, no token, a viewer calling Scan
codes = FACTS.setdefault("codes", {})
codes["missing"] = same_error(
    "missing image",
    lambda: call(images.Get, image_service_pb2.GetImageRequest(image_id="crpmissingimage00000")),
    "GET",
    "/container-registry/v1/images/crpmissingimage00000",
    ADMIN,
).name
codes["malformed"] = same_error(
    "malformed id",
    lambda: call(scanner.GetLast, scanner_service_pb2.GetLastScanResultRequest(image_id="x" * 51)),
    "GET",
    f"/container-registry/v1/images/{'x' * 51}:lastScanResult",
    ADMIN,
).name
if MODE == "tls":
    bare = grpc.secure_channel(CONFIG["endpoint"], grpc.ssl_channel_credentials(CA))
    viewer_sdk = yandexcloud.SDK(endpoint=CONFIG["endpoint"], root_certificates=CA, iam_token=VIEWER)
    viewer_scanner = viewer_sdk.client(scanner_service_pb2_grpc.ScannerServiceStub)
    viewer_scan = lambda: viewer_scanner.Scan(scanner_service_pb2.ScanRequest(image_id=image_id))
else:
    bare = grpc.insecure_channel(CONFIG["endpoint"])
    viewer_scan = lambda: scanner.Scan(scanner_service_pb2.ScanRequest(image_id=image_id), metadata=metadata(VIEWER))
bare_images = image_service_pb2_grpc.ImageServiceStub(bare)
codes["no_token"] = same_error(
    "no token",
    lambda: bare_images.Get(image_service_pb2.GetImageRequest(image_id=image_id)),
    "GET",
    f"/container-registry/v1/images/{image_id}",
    "",
).name
codes["viewer_scan"] = same_error(
    "viewer calling Scan",
    viewer_scan,
    "POST",
    "/container-registry/v1/scans",
    VIEWER,
    {"imageId": image_id},
).name
code, message, _ = grpc_error(
    lambda: call(registries.ForceDelete, registry_service_pb2.DeleteRegistryRequest(registry_id="crpnonexistent0000"))
)
check(code == grpc.StatusCode.UNIMPLEMENTED, f"ForceDelete: {code} {message}")
answer = call(registries.ListIpPermission, registry_service_pb2.ListIpPermissionRequest(registry_id=registry_id))
same("RegistryService.ListIpPermission", answer, rest("GET", f"/container-registry/v1/registries/{registry_id}:listIpPermission", ADMIN)[1])

if MODE == "tls":
    # ---- ScanPolicy: Create, Get, GetByRegistry, Update with a mask, Delete
    policies = client(scan_policy_service_pb2_grpc.ScanPolicyServiceStub)
    rules = scan_policy_pb2.ScanRules(push_rule=scan_policy_pb2.PushRule(repository_prefixes=["app"]))
    rules.schedule_rules.add(repository_prefixes=["app"]).rescan_period.FromSeconds(7 * 86400)
    created = sdk.create_operation_and_get_result(
        scan_policy_service_pb2.CreateScanPolicyRequest(
            registry_id=registry_id, name="weekly", description="from the SDK", rules=rules
        ),
        service=scan_policy_service_pb2_grpc.ScanPolicyServiceStub,
        method_name="Create",
        response_type=scan_policy_pb2.ScanPolicy,
        meta_type=scan_policy_service_pb2.CreateScanPolicyMetadata,
    )
    policy = created.response
    check(created.meta.scan_policy_id == policy.id and policy.rules == rules, f"created policy: {policy}")
    answer = policies.Get(scan_policy_service_pb2.GetScanPolicyRequest(scan_policy_id=policy.id))
    same("ScanPolicyService.Get", answer, rest("GET", f"/container-registry/v1/scanPolicies/{policy.id}", ADMIN)[1])
    check(answer == policy, "Get differs from Create's response")
    answer = policies.GetByRegistry(scan_policy_service_pb2.GetScanPolicyByRegistryRequest(registry_id=registry_id))
    same(
        "ScanPolicyService.GetByRegistry",
        answer,
        rest("GET", f"/container-registry/v1/scanPolicies/{registry_id}:byRegistry", ADMIN)[1],
    )
    operation = policies.Update(
        scan_policy_service_pb2.UpdateScanPolicyRequest(
            scan_policy_id=policy.id,
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
            name="ignored-by-the-mask",
            description="changed",
        )
    )
    same("ScanPolicyService.Update", operation, rest("GET", f"/operations/{operation.id}", ADMIN)[1])
    updated = scan_policy_pb2.ScanPolicy()
    check(operation.response.Unpack(updated), f"update response: {operation}")
    check(updated.description == "changed" and updated.name == "weekly" and updated.rules == rules, f"masked update: {updated}")
    answer = policies.Get(scan_policy_service_pb2.GetScanPolicyRequest(scan_policy_id=policy.id))
    same("ScanPolicyService.Get after Update", answer, rest("GET", f"/container-registry/v1/scanPolicies/{policy.id}", ADMIN)[1])
    operation = policies.Delete(scan_policy_service_pb2.DeleteScanPolicyRequest(scan_policy_id=policy.id))
    check(operation.done and operation.response.type_url.endswith("google.protobuf.Empty"), f"delete: {operation}")
    same_error(
        "deleted policy",
        lambda: policies.Get(scan_policy_service_pb2.GetScanPolicyRequest(scan_policy_id=policy.id)),
        "GET",
        f"/container-registry/v1/scanPolicies/{policy.id}",
        ADMIN,
    )
    FACTS["scan_policy"] = "ok"

    # ---- Cancel: a fresh scan, cancelled; then the done operation as REST has it
    operation = scanner.Scan(scanner_service_pb2.ScanRequest(image_id=image_id))
    cancelled = operations.Cancel(operation_service_pb2.CancelOperationRequest(operation_id=operation.id))
    check(cancelled.id == operation.id, f"cancel answered {cancelled.id}")
    for _ in range(240):
        done = operations.Get(operation_service_pb2.GetOperationRequest(operation_id=operation.id))
        if done.done:
            break
        time.sleep(0.5)
    check(done.done, "the cancelled scan never finished")
    same("OperationService.Get after Cancel", done, rest("GET", f"/operations/{operation.id}", ADMIN)[1])
    again = operations.Cancel(operation_service_pb2.CancelOperationRequest(operation_id=operation.id))
    same("OperationService.Cancel", again, rest("POST", f"/operations/{operation.id}:cancel", ADMIN)[1])
    FACTS["cancel"] = "error" if done.HasField("error") else "response"

print(json.dumps(FACTS))
