"""Drives crscan's access-binding, IP-permission and `secure` calls with the official
Python SDK (`yandexcloud`) over cleartext gRPC, as crates/crscan/tests/access.rs runs
it: binds allUsers as puller on a registry, lists the bindings, refuses an unknown
role, sets a PULL allow-list, creates a secure registry and reads it back, and
compares the gRPC lists with the REST ones.

Usage: python_access.py CONFIG_JSON (endpoint, rest, admin_token, registry_id).
Prints one JSON object of facts on stdout; exits non-zero on the first difference.
"""

import json
import sys
import urllib.request

import grpc
import yandexcloud
from google.protobuf import json_format
from yandex.cloud.access import access_pb2
from yandex.cloud.containerregistry.v1 import (
    ip_permission_pb2,
    registry_service_pb2,
    registry_service_pb2_grpc,
)

CONFIG = json.loads(sys.argv[1])
ADMIN = CONFIG["admin_token"]
REGISTRY = CONFIG["registry_id"]
METADATA = (("authorization", f"Bearer {ADMIN}"),)
FACTS = {}


def fail(message):
    print(f"FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def rest(path):
    request = urllib.request.Request(CONFIG["rest"] + path)
    request.add_header("Authorization", f"Bearer {ADMIN}")
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def same(name, grpc_message, rest_json):
    parsed = type(grpc_message)()
    json_format.ParseDict(rest_json, parsed)
    if parsed != grpc_message:
        fail(f"{name}: gRPC {json_format.MessageToJson(grpc_message)} but REST {rest_json}")


sdk = yandexcloud.SDK(endpoint=CONFIG["endpoint"])
registries = sdk.client(
    registry_service_pb2_grpc.RegistryServiceStub, endpoint=CONFIG["endpoint"], insecure=True
)

# ---- access bindings
puller = access_pb2.AccessBinding(
    role_id="container-registry.images.puller",
    subject=access_pb2.Subject(id="allUsers", type="system"),
)
operation = registries.UpdateAccessBindings(
    access_pb2.UpdateAccessBindingsRequest(
        resource_id=REGISTRY,
        access_binding_deltas=[access_pb2.AccessBindingDelta(action=access_pb2.ADD, access_binding=puller)],
    ),
    metadata=METADATA,
)
if not operation.done:
    fail(f"UpdateAccessBindings is not done: {operation}")
FACTS["update_metadata"] = operation.metadata.type_url
meta = access_pb2.UpdateAccessBindingsMetadata()
operation.metadata.Unpack(meta)
if meta.resource_id != REGISTRY:
    fail(f"metadata names {meta.resource_id}, not {REGISTRY}")
listed = registries.ListAccessBindings(
    access_pb2.ListAccessBindingsRequest(resource_id=REGISTRY), metadata=METADATA
)
same("ListAccessBindings", listed, rest(f"/container-registry/v1/registries/{REGISTRY}:listAccessBindings"))
FACTS["bindings"] = [[b.role_id, b.subject.type, b.subject.id] for b in listed.access_bindings]
try:
    registries.SetAccessBindings(
        access_pb2.SetAccessBindingsRequest(
            resource_id=REGISTRY,
            access_bindings=[access_pb2.AccessBinding(role_id="owner", subject=puller.subject)],
        ),
        metadata=METADATA,
    )
    fail("an unknown role was accepted")
except grpc.RpcError as error:
    FACTS["invalid_role"] = error.code().name
    if "owner" not in error.details():
        fail(f"the refusal does not name the role: {error.details()}")

# ---- IP permissions
operation = registries.SetIpPermission(
    registry_service_pb2.SetIpPermissionRequest(
        registry_id=REGISTRY,
        ip_permission=[ip_permission_pb2.IpPermission(action=ip_permission_pb2.IpPermission.PULL, ip="127.0.0.0/8")],
    ),
    metadata=METADATA,
)
if not operation.done:
    fail(f"SetIpPermission is not done: {operation}")
listed = registries.ListIpPermission(
    registry_service_pb2.ListIpPermissionRequest(registry_id=REGISTRY), metadata=METADATA
)
same("ListIpPermission", listed, rest(f"/container-registry/v1/registries/{REGISTRY}:listIpPermission"))
FACTS["ip_permissions"] = [
    [ip_permission_pb2.IpPermission.Action.Name(p.action), p.ip] for p in listed.permissions
]

# ---- a secure registry
operation = registries.Create(
    registry_service_pb2.CreateRegistryRequest(folder_id="safe", name="safe", secure=True),
    metadata=METADATA,
)
if not operation.done:
    fail(f"Create is not done: {operation}")
created = registry_service_pb2.CreateRegistryMetadata()
operation.metadata.Unpack(created)
registry = registries.Get(
    registry_service_pb2.GetRegistryRequest(registry_id=created.registry_id), metadata=METADATA
)
FACTS["secure_registry_id"] = registry.id
FACTS["secure_registry_name"] = registry.name
print(json.dumps(FACTS))
