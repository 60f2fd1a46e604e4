// list() over 200 stored machines: the work behind `gpumachine ls --cached` (target: < 20 ms for
// the whole command).
#include "gm/machine.h"
#include "store/store.h"

#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

namespace {

constexpr int k_machines = 200;

/// A temporary home holding k_machines realistic records, removed at exit.
class PopulatedHome {
 public:
  PopulatedHome() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "gm-store-bench-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::abort();
    }
    m_dir = tmpl;
    gm::store::Store store(m_dir / "home");
    for (int i = 0; i < k_machines; ++i) {
      gm::MachineRecord r;
      r.name = "gpu-" + std::to_string(i);
      r.id = "3f2b8c1e-0d4a-4c55-9a57-" + std::to_string(100000000000 + i);
      r.driver = "ec2";
      r.size = {.region = "us-east-1", .instance_type = "g5.xlarge"};
      r.ssh = {"10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250), 22, "ubuntu",
               store.key_path(r.name).string(),
               "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmN0xd0uYgnCpa9H3Lj8bSUBLEMVfYrW1TbnQ1nN2iQ"};
      r.resources = {{"key-pair", "gm-" + r.name, "us-east-1", "created"},
                     {"security-group", "sg-0123456789abcdef0", "us-east-1", "created"},
                     {"instance", "i-0123456789abcdef0", "us-east-1", "created"}};
      r.facts = {{"os", "ubuntu 22.04"},
                 {"cpus", 4},
                 {"gpus", {{{"model", "NVIDIA A10G"}, {"memory_mib", 23028}}}}};
      r.timings = {{"launch", 31.5}, {"ssh", 12.0}, {"provision", 240.2}};
      r.last_state = "running";
      store.save(store.lock(r.name, "bench"), r);
    }
  }
  ~PopulatedHome() {
    std::error_code ec;
    std::filesystem::remove_all(m_dir, ec);
  }
  std::filesystem::path home() const { return m_dir / "home"; }

 private:
  std::filesystem::path m_dir;
};

const PopulatedHome& populated() {
  static PopulatedHome home;
  return home;
}

void BM_StoreList200(benchmark::State& state) {
  gm::store::Store store(populated().home());
  for (auto _ : state) {
    std::vector<gm::store::Entry> entries = store.list();
    if (entries.size() != k_machines) {
      state.SkipWithError("wrong number of machines");
    }
    benchmark::DoNotOptimize(entries);
  }
  state.SetItemsProcessed(state.iterations() * k_machines);
}
BENCHMARK(BM_StoreList200)->Unit(benchmark::kMillisecond);

void BM_StoreNames200(benchmark::State& state) {
  gm::store::Store store(populated().home());
  for (auto _ : state) {
    benchmark::DoNotOptimize(store.names());
  }
}
BENCHMARK(BM_StoreNames200)->Unit(benchmark::kMicrosecond);

void BM_StoreSave(benchmark::State& state) {
  // One save among 200 machines: the record, then ssh_config regenerated from all of them.
  gm::store::Store store(populated().home());
  gm::MachineRecord r = store.load("gpu-7");
  gm::store::MachineLock lock = store.lock("gpu-7", "bench");
  for (auto _ : state) {
    store.save(lock, r);
  }
}
BENCHMARK(BM_StoreSave)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
