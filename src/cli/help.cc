#include "cli/help.h"

#include <map>
#include <vector>

namespace gm::cli {

namespace {

// One line per example: the command, two spaces, '#', what it does.
const std::map<std::string, std::vector<std::string>>& examples() {
  static const std::map<std::string, std::vector<std::string>> table = {
      {"create",
       {"gpumachine create gpu1 --driver ec2 --ec2-instance-type g5.xlarge   # launch, provision, "
        "probe",
        "gpumachine create gpu1 --ec2-instance-type g4dn.xlarge --autostop 30m",
        "gpumachine create box --driver generic --generic-ip-address 203.0.113.7 "
        "--generic-ssh-user ubuntu   # an existing host",
        "gpumachine create gpu1 -f examples/gpu-jupyter.yaml   # from a machine file"}},
      {"ls", {"gpumachine ls", "gpumachine ls --cached --format json"}},
      {"status", {"gpumachine status gpu1"}},
      {"ip", {"gpumachine ip gpu1", "ssh ubuntu@$(gpumachine ip gpu1)"}},
      {"inspect", {"gpumachine inspect gpu1", "gpumachine inspect gpu1 --format json"}},
      {"ssh",
       {"gpumachine ssh gpu1   # interactive shell", "gpumachine ssh gpu1 -- nvidia-smi",
        "gpumachine ssh gpu1 -n -- 'docker ps'   # without sending local stdin"}},
      {"scp",
       {"gpumachine scp data.tar gpu1:data.tar", "gpumachine scp gpu1:results/model.pt .",
        "gpumachine scp -r ./dataset gpu1:dataset"}},
      {"start", {"gpumachine start gpu1"}},
      {"stop", {"gpumachine stop gpu1   # the disk stays; compute billing stops"}},
      {"kill", {"gpumachine kill gpu1   # hard power-off"}},
      {"restart", {"gpumachine restart gpu1"}},
      {"rm",
       {"gpumachine rm gpu1   # terminate and delete everything it owns",
        "gpumachine --yes rm gpu1 gpu2   # no question"}},
      {"provision",
       {"gpumachine provision gpu1", "gpumachine provision gpu1 --dry-run   # the plan only"}},
      {"probe",
       {"gpumachine probe gpu1", "gpumachine probe gpu1 --container   # also inside a container"}},
      {"forward",
       {"gpumachine forward gpu1 8080   # localhost:8080 -> the machine's 127.0.0.1:8080",
        "gpumachine forward gpu1 9000:127.0.0.1:8000 --background", "gpumachine forward --list",
        "gpumachine forward gpu1 --stop"}},
      {"jupyter",
       {"gpumachine jupyter gpu1   # JupyterLab in a GPU container, URL with its token",
        "gpumachine jupyter gpu1 --background --open",
        "gpumachine jupyter gpu1 --port 8888 --stop"}},
      {"tensorboard",
       {"gpumachine tensorboard gpu1 --logdir runs",
        "gpumachine tensorboard gpu1 --port 6006 --stop"}},
      {"ray",
       {"gpumachine ray c1 --image rayproject/ray:latest-gpu   # head on node 0, dashboard URL",
        "gpumachine ray c1 --background", "gpumachine ray c1 --stop"}},
      {"env",
       {"eval \"$(gpumachine env gpu1)\"   # local docker and docker compose drive gpu1",
        "eval \"$(gpumachine env gpu1 --unset)\"", "gpumachine env gpu1 --shell fish | source"}},
      {"prices", {"gpumachine prices --family g5", "gpumachine prices --region eu-west-1"}},
      {"autostop",
       {"gpumachine autostop gpu1 30m   # stop after 30 idle minutes",
        "gpumachine autostop gpu1 1h --action terminate", "gpumachine autostop gpu1 off"}},
      {"gc",
       {"gpumachine gc   # list what no record owns",
        "gpumachine gc --region us-east-1 --delete   # asks first; only this home's, 10+ min old",
        "gpumachine gc --all-homes   # also list other homes' and untagged resources"}},
      {"ssh-allow",
       {"gpumachine ssh-allow gpu1   # after the laptop moved: SSH from its new address only",
        "gpumachine ssh-allow gpu1 --cidr 198.51.100.0/24   # a range instead"}},
      {"run",
       {"gpumachine run gpu1 -- python -m test   # image from ./Dockerfile; exits with its status",
        "gpumachine run gpu1 --image pytorch/pytorch -e WANDB_API_KEY --download results -- "
        "python train.py",
        "gpumachine run gpu1 --detach -- python train.py   # prints the job id",
        "gpumachine run -f gpumachine.yaml --rm   # the task file: create, run, download, remove",
        "gpumachine run -f gpumachine.yaml -- python x.py   # the file's machine, this command"}},
      {"jobs", {"gpumachine jobs gpu1", "gpumachine jobs gpu1 --format json"}},
      {"logs", {"gpumachine logs gpu1   # the newest job", "gpumachine logs gpu1 3f2a9c1e -f"}},
      {"attach", {"gpumachine attach gpu1 3f2a9c1e   # follow it; exits with its status"}},
      {"cancel", {"gpumachine cancel gpu1 3f2a9c1e"}},
      {"compose",
       {"gpumachine compose gpu1 -- up -d   # then its published ports are forwarded here",
        "gpumachine compose gpu1 --background -- up -d", "gpumachine compose gpu1 -- down"}},
      {"sync",
       {"gpumachine sync gpu1   # the current folder, only what changed",
        "gpumachine sync gpu1 --down results   # copy results back"}},
      {"ssh-config",
       {"gpumachine ssh-config --install   # then `ssh gpu1` works with the system client"}},
      {"version", {"gpumachine version", "gpumachine --version"}},
  };
  return table;
}

}  // namespace

std::string verb_examples(const std::string& verb) {
  auto it = examples().find(verb);
  if (it == examples().end()) {
    return {};
  }
  std::string out = "Examples:\n";
  for (const std::string& line : it->second) {
    out += "  " + line + "\n";
  }
  return out;
}

}  // namespace gm::cli
