"""`gpumachine probe NAME --cluster`: one process per node (NODE_RANK of NNODES, rendezvous at
MASTER_ADDR:MASTER_PORT from the rank environment) all-reduces a tensor of ones with NCCL on
GPUs, gloo on CPU, checks the sum, times it and says which transport NCCL used (its INIT/NET
log: NET/OFI is EFA, NET/IB InfiniBand, NET/Socket TCP). Rank 0 prints one line
"GM_CLUSTER_PROBE <json>"."""
import glob
import json
import os
import re
import tempfile
import time

BYTES = int(os.environ.get("GM_PROBE_BYTES", str(64 << 20)))
ITERS = 5

log_dir = tempfile.mkdtemp(prefix="gm-probe-")
os.environ.setdefault("NCCL_DEBUG", "INFO")
os.environ.setdefault("NCCL_DEBUG_SUBSYS", "INIT,NET")
os.environ["NCCL_DEBUG_FILE"] = os.path.join(log_dir, "nccl.%p.log")

import torch  # noqa: E402  (after NCCL's environment)
import torch.distributed as dist  # noqa: E402

rank, world = int(os.environ["NODE_RANK"]), int(os.environ["NNODES"])
gpu = torch.cuda.is_available() and int(os.environ.get("GPUS_PER_NODE", "0")) > 0
backend = "nccl" if gpu else "gloo"
dist.init_process_group(backend, init_method="tcp://%s:%s" % (os.environ["MASTER_ADDR"],
                                                              os.environ["MASTER_PORT"]),
                        rank=rank, world_size=world)
device = torch.device("cuda", 0) if gpu else torch.device("cpu")
data = torch.ones(BYTES // 4, dtype=torch.float32, device=device)


def sync():
    if gpu:
        torch.cuda.synchronize()


for _ in range(2):  # warm-up: connections and buffers
    dist.all_reduce(data)
sync()
data.fill_(1.0)
dist.barrier()
start = time.monotonic()
for _ in range(ITERS):
    dist.all_reduce(data)
sync()
seconds = (time.monotonic() - start) / ITERS
# ones summed ITERS times over world ranks: world ** ITERS everywhere.
correct = bool(torch.all(data == float(world) ** ITERS).item())

transport = "tcp (gloo)"
if gpu:
    text = ""
    for path in glob.glob(os.path.join(log_dir, "nccl.*.log")):
        with open(path, errors="replace") as f:
            text += f.read()
    for pattern, name in ((r"NET/OFI", "efa (NET/OFI)"), (r"NET/IB", "infiniband (NET/IB)"),
                          (r"NET/Socket", "tcp (NET/Socket)")):
        if re.search(pattern, text):
            transport = name
            break
    else:
        transport = "unknown (no NCCL NET line)"
dist.destroy_process_group()
if rank == 0:
    algbw = BYTES / seconds / 1e9
    print("GM_CLUSTER_PROBE " + json.dumps({
        "backend": backend, "nodes": world, "bytes": BYTES, "seconds": seconds,
        "algbw_gbps": algbw, "busbw_gbps": algbw * 2 * (world - 1) / world,
        "correct": correct, "transport": transport}), flush=True)
elif not correct:
    print("all_reduce gave a wrong sum on this node", flush=True)
raise SystemExit(0 if correct else 1)
