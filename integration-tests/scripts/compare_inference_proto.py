"""Checks hotswap's inference/*.proto against the descriptors that ship in
the PyPI `tritonclient[grpc]` package, an unmodified Open Inference Protocol
client.

Every service method, message, field and enum value that hotswap defines must
have the same name, number, type, label and oneof as the client's; every
method and message of the client's grpc_service.proto must exist in hotswap's.
hotswap's model_config.proto may leave messages and fields out (see the
comment in that file). Prints each difference and exits 1 if there is any.

usage: compare_inference_proto.py PROTO_ROOT WORK_DIR
"""

import importlib
import json
import subprocess
import sys

from grpc_tools import protoc


def compile_ours(proto_root, work_dir):
    files = ["inference/grpc_service.proto", "inference/model_config.proto"]
    args = ["protoc", f"-I{proto_root}", f"--python_out={work_dir}"] + files
    if protoc.main(args) != 0:
        sys.exit("protoc failed on hotswap's inference protos")
    sys.path.insert(0, work_dir)
    service = importlib.import_module("inference.grpc_service_pb2")
    config = importlib.import_module("inference.model_config_pb2")
    return [service.DESCRIPTOR, config.DESCRIPTOR]


def theirs():
    # tritonclient registers the same full names in the default descriptor
    # pool; ours live in their own module files, so importing both in one
    # process would collide. Run with one side per process (see main).
    from tritonclient.grpc import model_config_pb2, service_pb2

    return [service_pb2.DESCRIPTOR, model_config_pb2.DESCRIPTOR]


def field_key(f):
    type_name = ""
    if f.message_type is not None:
        type_name = f.message_type.full_name
    elif f.enum_type is not None:
        type_name = f.enum_type.full_name
    oneof = f.containing_oneof.name if f.containing_oneof else ""
    return (f.number, f.type, type_name, f.is_repeated, oneof)


def flatten(files):
    """Maps every element to a comparable description, keyed by full name."""
    out = {}

    def enum(e):
        out["enum " + e.full_name] = {v.name: v.number for v in e.values}

    def message(m):
        out["message " + m.full_name] = {f.name: field_key(f) for f in m.fields}
        for e in m.enum_types:
            enum(e)
        for n in m.nested_types:
            message(n)

    for fd in files:
        for s in fd.services_by_name.values():
            for meth in s.methods:
                out["rpc " + meth.full_name] = (
                    meth.input_type.full_name,
                    meth.output_type.full_name,
                    meth.client_streaming,
                    meth.server_streaming,
                )
        for e in fd.enum_types_by_name.values():
            enum(e)
        for m in fd.message_types_by_name.values():
            message(m)
    return out


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--dump":
        side = sys.argv[2]
        files = theirs() if side == "theirs" else compile_ours(*sys.argv[3].split("|"))
        # Messages of the model configuration file may be left out or partial.
        partial = [
            m.full_name
            for fd in files
            if fd.name.endswith("model_config.proto")
            for m in fd.message_types_by_name.values()
        ]
        print(json.dumps({"elements": flatten(files), "partial": partial}, default=list))
        return 0

    proto_root, work_dir = sys.argv[1], sys.argv[2]
    def dump(side):
        argv = [sys.executable, __file__, "--dump", side, f"{proto_root}|{work_dir}"]
        return json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)

    ours = dump("ours")["elements"]
    client_dump = dump("theirs")
    client, partial_roots = client_dump["elements"], set(client_dump["partial"])

    def may_be_partial(key):
        name = key.split(" ", 1)[1]
        return any(name == r or name.startswith(r + ".") for r in partial_roots)

    problems = []
    for key, mine in ours.items():
        if key not in client:
            problems.append(f"{key}: not in the client's protocol")
        elif isinstance(mine, dict):
            for name, value in mine.items():
                if name not in client[key]:
                    problems.append(f"{key}.{name}: not in the client's protocol")
                elif client[key][name] != value:
                    problems.append(f"{key}.{name}: {value} != client's {client[key][name]}")
        elif mine != client[key]:
            problems.append(f"{key}: {mine} != client's {client[key]}")
    for key, value in client.items():
        if may_be_partial(key):
            continue
        if key not in ours:
            problems.append(f"{key}: missing from hotswap")
        elif isinstance(value, dict):
            problems.extend(
                f"{key}.{name}: missing from hotswap" for name in value if name not in ours[key]
            )

    for p in problems:
        print(p)
    print(f"compared {len(ours)} elements, {len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
