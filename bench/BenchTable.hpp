// One row of the benchmark table: a figure beside its reference from the same run.
//
// Every benchmark prints its rows through this, as a readable line and as a tab-separated line
// starting with "TABLE", which scripts/bench gathers from all benchmarks into one table.
#pragma once

#include <cstdio>
#include <string>

namespace bench {

// `target` says what the figure should be, in words or numbers ("≤ 0.5", "bounded", "-").
inline void row(const std::string &benchmark, const std::string &figure, double value,
                const std::string &unit, const std::string &reference, double reference_value,
                const std::string &target) {
  const double ratio = reference_value != 0 ? value / reference_value : 0;
  std::printf("  %-58s %12.3f %-8s | %-34s %12.3f | ratio %8.3f | target %s\n", figure.c_str(),
              value, unit.c_str(), reference.c_str(), reference_value, ratio, target.c_str());
  std::printf("TABLE\t%s\t%s\t%.3f\t%s\t%s\t%.3f\t%.3f\t%s\n", benchmark.c_str(), figure.c_str(),
              value, unit.c_str(), reference.c_str(), reference_value, ratio, target.c_str());
  std::fflush(stdout);
}

}  // namespace bench
