"""A torchrun worker for the cluster tests: gloo all_reduce of (global rank + 1) on CPU, printed as
"rank R of W: sum S". With GM_TEST_PIDS=DIR it then writes "WORKER_PID AGENT_PID" to DIR/<rank>
and sleeps until it is stopped."""
import os
import time

import torch
import torch.distributed as dist

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
value = torch.tensor([float(rank + 1)])
dist.all_reduce(value)
print(f"rank {rank} of {world}: sum {int(value.item())}", flush=True)
pids = os.environ.get("GM_TEST_PIDS")
if pids:
    with open(os.path.join(pids, f"{rank}.tmp"), "w") as out:
        out.write(f"{os.getpid()} {os.getppid()}\n")
    os.rename(os.path.join(pids, f"{rank}.tmp"), os.path.join(pids, str(rank)))
    time.sleep(3600)
dist.destroy_process_group()
