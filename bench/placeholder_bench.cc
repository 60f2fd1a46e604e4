#include "util/crypto.h"

#include <benchmark/benchmark.h>

static void BM_Sha256(benchmark::State& state) {
  std::string data(4096, 'x');
  for (auto _ : state) {
    benchmark::DoNotOptimize(gm::util::sha256(data));
  }
}
BENCHMARK(BM_Sha256);
BENCHMARK_MAIN();
