#include "tools/loadgen/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace messplus::loadgen {
namespace {

constexpr int kMinDigits = 1;
constexpr int kMaxDigits = 4;  // 4 digits already take 6.5 MB for an int64 range

int64_t Pow10(int d) {
  int64_t v = 1;
  for (int i = 0; i < d; ++i) v *= 10;
  return v;
}

}  // namespace

LatencyHistogram::LatencyHistogram(int significant_digits, int64_t highest_ns) {
  digits_ = std::clamp(significant_digits, kMinDigits, kMaxDigits);
  const uint64_t wanted = 2 * static_cast<uint64_t>(Pow10(digits_));
  highest_ = std::max<int64_t>(highest_ns, static_cast<int64_t>(wanted));
  sub_bucket_count_ = std::bit_ceil(wanted);
  sub_bucket_bits_ = std::countr_zero(sub_bucket_count_);
  sub_bucket_half_ = sub_bucket_count_ / 2;
  counts_.assign(IndexOf(static_cast<uint64_t>(highest_)) + 1, 0);
}

size_t LatencyHistogram::IndexOf(uint64_t v) const {
  // Below S: one bucket per value. Above: with msb the top bit of v, the shift
  // b = msb - (log2(S) - 1) >= 1 keeps v's top log2(S) bits, v >> b in [S/2, S); the
  // buckets of shift b are [(b + 1) * S/2, (b + 2) * S/2), right after those of b - 1.
  if (v < sub_bucket_count_) return static_cast<size_t>(v);
  const int msb = 63 - std::countl_zero(v);
  const int b = msb - (sub_bucket_bits_ - 1);
  return static_cast<size_t>(static_cast<uint64_t>(b) * sub_bucket_half_ + (v >> b));
}

int64_t LatencyHistogram::LowestAt(size_t index) const {
  if (index < sub_bucket_count_) return static_cast<int64_t>(index);
  const uint64_t b = index / sub_bucket_half_ - 1;
  const uint64_t sub = index - b * sub_bucket_half_;
  return static_cast<int64_t>(sub << b);
}

int64_t LatencyHistogram::HighestAt(size_t index) const {
  if (index < sub_bucket_count_) return static_cast<int64_t>(index);
  const uint64_t b = index / sub_bucket_half_ - 1;
  return LowestAt(index) + static_cast<int64_t>((uint64_t{1} << b) - 1);
}

int64_t LatencyHistogram::Clamp(int64_t value_ns) const {
  return std::clamp<int64_t>(value_ns, 0, highest_);
}

int64_t LatencyHistogram::LowestEquivalent(int64_t value_ns) const {
  return LowestAt(IndexOf(static_cast<uint64_t>(Clamp(value_ns))));
}

int64_t LatencyHistogram::HighestEquivalent(int64_t value_ns) const {
  return HighestAt(IndexOf(static_cast<uint64_t>(Clamp(value_ns))));
}

void LatencyHistogram::RecordN(int64_t value_ns, uint64_t count) {
  if (count == 0) return;
  const int64_t v = Clamp(value_ns);
  if (v != value_ns) clamped_ += count;
  counts_[IndexOf(static_cast<uint64_t>(v))] += count;
  if (count_ == 0) {
    min_ = max_ = v;
  } else {
    min_ = std::min(min_, v);
    max_ = std::max(max_, v);
  }
  count_ += count;
  sum_ += static_cast<Uint128>(v) * count;
}

bool LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.digits_ != digits_ || other.highest_ != highest_) return false;
  if (other.count_ == 0) return true;
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  if (count_ == 0) {
    min_ = other.min_;
    max_ = other.max_;
  } else {
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }
  count_ += other.count_;
  clamped_ += other.clamped_;
  sum_ += other.sum_;
  return true;
}

void LatencyHistogram::Reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  clamped_ = 0;
  min_ = max_ = 0;
  sum_ = 0;
}

double LatencyHistogram::Mean() const {
  if (count_ == 0) return 0.0;
  return static_cast<double>(static_cast<long double>(sum_) / static_cast<long double>(count_));
}

uint64_t LatencyHistogram::Rank(double p, uint64_t count) {
  if (count == 0) return 0;
  const double exact = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(count);
  const double rank = std::ceil(exact * (1.0 - 1e-12));
  return std::clamp<uint64_t>(static_cast<uint64_t>(rank), 1, count);
}

int64_t LatencyHistogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  if (!(p > 0.0)) return min_;  // also NaN
  if (p >= 100.0) return max_;
  const uint64_t rank = Rank(p, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(HighestAt(i), min_, max_);
  }
  return max_;  // unreachable: the counts sum to count_
}

}  // namespace messplus::loadgen
