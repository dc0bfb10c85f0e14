// LatencyHistogram: a log-linear histogram of latencies in nanoseconds, in the style of
// HdrHistogram (Gil Tene), for the load generator and the ZeroMQ baselines.
//
// Layout. With d significant digits, each power-of-two range of values [2^k, 2^(k+1)) is cut
// into S/2 equal buckets, S = the smallest power of two >= 2 * 10^d, and values below S get a
// bucket each (exact). Any value v is then counted in a bucket [lo, hi] with
// (hi - lo) / lo < 2 / S <= 10^-d, so every figure read back (percentiles) is within a
// relative error of 10^-d of a recorded value (RelativePrecision() gives the exact bound).
// Values from 0 to highest_ns are tracked (by default one hour); memory is fixed at
// construction: about 8 * (S/2) * (log2(highest_ns / S) + 2) bytes (36 KiB for d = 2,
// 270 KiB for d = 3).
//
// Recording is O(1): a count-leading-zeros, a shift and an increment; nothing is allocated
// after construction. Min, Max, Count and Mean are exact (kept beside the buckets).
// Values outside [0, highest_ns] are clamped to the nearest end and counted as usual, and
// also in clamped_count(), so the total count stays right and the clamping is visible.
//
// Percentile(p) reads the value at rank ceil(p/100 * Count()) (the nearest-rank definition:
// the smallest recorded value such that at least p percent of the values are <= it), as the
// highest value equivalent to its bucket, limited to [Min(), Max()]: it never under-reports,
// and over-reports by at most RelativePrecision() of the true value.
//
// Thread safety: none. Give each thread its own histogram and Merge() them afterwards.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

namespace messplus::loadgen {

class LatencyHistogram {
 public:
  // One hour in nanoseconds: the default upper end of the tracked range.
  static constexpr int64_t kOneHourNs = 3'600'000'000'000;

  // REQUIRES: 1 <= significant_digits <= 4 and highest_ns >= 2 * 10^significant_digits
  // (checked: out-of-range arguments are clamped into range, see significant_digits() and
  // highest_trackable()).
  explicit LatencyHistogram(int significant_digits = 3, int64_t highest_ns = kOneHourNs);

  // Copyable (a snapshot) and movable.
  LatencyHistogram(const LatencyHistogram&) = default;
  LatencyHistogram& operator=(const LatencyHistogram&) = default;
  LatencyHistogram(LatencyHistogram&&) noexcept = default;
  LatencyHistogram& operator=(LatencyHistogram&&) noexcept = default;

  // Records one value (nanoseconds). Values < 0 count as 0 and values > highest_trackable()
  // as highest_trackable(); both are also counted in clamped_count().
  void Record(int64_t value_ns) { RecordN(value_ns, 1); }
  void Record(std::chrono::nanoseconds value) { RecordN(value.count(), 1); }
  // Records `count` occurrences of one value (count 0 records nothing).
  void RecordN(int64_t value_ns, uint64_t count);

  // Adds every count of `other` into this one, as if its values had been recorded here.
  // Returns false, and changes nothing, when the layouts differ (significant digits or
  // highest trackable value); histograms built with the same arguments always merge.
  [[nodiscard]] bool Merge(const LatencyHistogram& other);

  // Forgets every value; the layout (and memory) stays.
  void Reset();

  uint64_t Count() const { return count_; }
  // Exact smallest / largest recorded value after clamping; 0 when empty.
  int64_t Min() const { return count_ == 0 ? 0 : min_; }
  int64_t Max() const { return count_ == 0 ? 0 : max_; }
  // Exact mean of the (clamped) values; 0 when empty.
  double Mean() const;
  // The value at percentile p (clamped to [0, 100]); see the header comment. 0 when empty;
  // p = 0 gives Min(), p = 100 gives Max().
  int64_t Percentile(double p) const;
  // Values that were outside [0, highest_trackable()] when recorded.
  uint64_t clamped_count() const { return clamped_; }

  int significant_digits() const { return digits_; }
  int64_t highest_trackable() const { return highest_; }
  // The rank Percentile(p) reads for `count` values: ceil(p/100 * count) within [1, count]
  // (a relative 1e-12 is taken off p/100 * count first, so that binary rounding of an exact
  // product such as 99.9% of 100,000 does not move the rank up by one).
  static uint64_t Rank(double p, uint64_t count);

  // Upper bound on (reported - true) / true for any value read back: 2 / S.
  double RelativePrecision() const { return 2.0 / static_cast<double>(sub_bucket_count_); }
  // Bytes held by the buckets.
  size_t MemoryBytes() const { return counts_.size() * sizeof(uint64_t); }

  // The bucket of `value_ns` (after clamping) as [LowestEquivalent, HighestEquivalent]: all
  // values in it are indistinguishable here. For tests and for exporters.
  int64_t LowestEquivalent(int64_t value_ns) const;
  int64_t HighestEquivalent(int64_t value_ns) const;

 private:
  size_t IndexOf(uint64_t v) const;
  int64_t LowestAt(size_t index) const;
  int64_t HighestAt(size_t index) const;
  int64_t Clamp(int64_t value_ns) const;

  int digits_;
  int64_t highest_;
  int sub_bucket_bits_;        // log2(S)
  uint64_t sub_bucket_count_;  // S: values below it have a bucket each
  uint64_t sub_bucket_half_;   // S/2: buckets per power of two above S
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t clamped_ = 0;
  int64_t min_ = 0;
  int64_t max_ = 0;
  // Sum of the values, exact: 128 bits hold 2^64 values of 2^63 ns each.
  __extension__ using Uint128 = unsigned __int128;  // GCC/Clang extension; -Wpedantic-safe
  Uint128 sum_ = 0;
};

}  // namespace messplus::loadgen
