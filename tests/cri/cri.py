#!/usr/bin/env python3
"""A minimal CRI v1 client for the runtime tests: what the kubelet does to a pod
sandbox, one call per invocation, the answer as JSON on stdout.

usage:
  cri.py SOCKET run '{"name":..,"namespace":..,"uid":..,"annotations":{..}}'  -> {"id":..}
  cri.py SOCKET status ID      -> {"state":..,"ip":..,"pid":..,"netns":..}
  cri.py SOCKET stop ID        -> {}
  cri.py SOCKET remove ID      -> {}
  cri.py SOCKET list           -> {"ids":[..]}
A failed call prints {"error": "<grpc details>"} and exits 1.
"""
import json
import sys

import grpc
from cri_api.v1 import api_pb2 as api
from cri_api.v1.api_pb2_grpc import RuntimeServiceStub

TIMEOUT = 120


def main() -> int:
    sock, verb, *rest = sys.argv[1:]
    stub = RuntimeServiceStub(grpc.insecure_channel("unix://" + sock))
    try:
        if verb == "run":
            pod = json.loads(rest[0])
            config = api.PodSandboxConfig(
                metadata=api.PodSandboxMetadata(
                    name=pod["name"], namespace=pod["namespace"], uid=pod["uid"], attempt=0
                ),
                hostname=pod["name"][:63],
                annotations=pod.get("annotations", {}),
                labels={"mrs-test": "1"},
                linux=api.LinuxPodSandboxConfig(),
            )
            reply = stub.RunPodSandbox(api.RunPodSandboxRequest(config=config), timeout=TIMEOUT)
            out = {"id": reply.pod_sandbox_id}
        elif verb == "status":
            reply = stub.PodSandboxStatus(
                api.PodSandboxStatusRequest(pod_sandbox_id=rest[0], verbose=True), timeout=TIMEOUT
            )
            info = json.loads(reply.info.get("info", "{}"))
            namespaces = info.get("runtimeSpec", {}).get("linux", {}).get("namespaces", [])
            netns = [n.get("path", "") for n in namespaces if n.get("type") == "network"]
            out = {
                "state": api.PodSandboxState.Name(reply.status.state),
                "ip": reply.status.network.ip,
                "pid": info.get("pid", 0),
                "netns": netns[0] if netns else "",
                "cni_result": info.get("cniResult"),
            }
        elif verb == "stop":
            stub.StopPodSandbox(api.StopPodSandboxRequest(pod_sandbox_id=rest[0]), timeout=TIMEOUT)
            out = {}
        elif verb == "remove":
            stub.RemovePodSandbox(api.RemovePodSandboxRequest(pod_sandbox_id=rest[0]), timeout=TIMEOUT)
            out = {}
        elif verb == "list":
            reply = stub.ListPodSandbox(api.ListPodSandboxRequest(), timeout=TIMEOUT)
            out = {"ids": [item.id for item in reply.items]}
        else:
            print(json.dumps({"error": f"unknown verb {verb}"}))
            return 2
    except grpc.RpcError as e:
        print(json.dumps({"error": e.details() or str(e.code())}))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
