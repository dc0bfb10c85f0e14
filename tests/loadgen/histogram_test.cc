#include "tools/loadgen/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "router/rng.h"

namespace messplus::loadgen {
namespace {

constexpr double kPercentiles[] = {0.0,  0.1,  1.0,  5.0,  10.0, 25.0,  50.0,   75.0,
                                   90.0, 95.0, 99.0, 99.5, 99.9, 99.99, 99.999, 100.0};

// Sorted samples and their exact nearest-rank quantile (the definition the histogram states).
struct Exact {
  explicit Exact(std::vector<int64_t> v) : sorted(std::move(v)) {
    std::sort(sorted.begin(), sorted.end());
  }
  int64_t Quantile(double p) const {
    if (p <= 0.0) return sorted.front();
    if (p >= 100.0) return sorted.back();
    return sorted[LatencyHistogram::Rank(p, sorted.size()) - 1];
  }
  double Mean() const {
    long double sum = 0;
    for (int64_t v : sorted) sum += static_cast<long double>(v);
    return static_cast<double>(sum / static_cast<long double>(sorted.size()));
  }
  std::vector<int64_t> sorted;
};

// Every percentile is at or above the exact quantile and within the stated relative precision
// of it; min, max, count and mean are exact.
void ExpectMatches(const LatencyHistogram& h, const std::vector<int64_t>& samples,
                   const std::string& what) {
  const Exact exact(samples);
  ASSERT_EQ(h.Count(), samples.size()) << what;
  EXPECT_EQ(h.Min(), exact.sorted.front()) << what;
  EXPECT_EQ(h.Max(), exact.sorted.back()) << what;
  EXPECT_NEAR(h.Mean(), exact.Mean(), 1e-9 * std::max(1.0, exact.Mean())) << what;
  for (double p : kPercentiles) {
    const int64_t want = exact.Quantile(p);
    const int64_t got = h.Percentile(p);
    EXPECT_GE(got, want) << what << " p" << p;
    EXPECT_LE(static_cast<double>(got - want), h.RelativePrecision() * static_cast<double>(want))
        << what << " p" << p << ": got " << got << ", exact " << want;
  }
  EXPECT_EQ(h.Percentile(0.0), h.Min()) << what;
  EXPECT_EQ(h.Percentile(100.0), h.Max()) << what;
}

LatencyHistogram RecordAll(const std::vector<int64_t>& samples, int digits) {
  LatencyHistogram h(digits);
  for (int64_t v : samples) h.Record(v);
  return h;
}

// Generators (nanoseconds), seeded so every run sees the same samples.
std::vector<int64_t> Uniform(uint64_t seed, size_t n, int64_t lo, int64_t hi) {
  Rng rng(seed);
  std::vector<int64_t> v(n);
  for (int64_t& x : v) x = lo + static_cast<int64_t>(rng.Below(static_cast<uint64_t>(hi - lo)));
  return v;
}

std::vector<int64_t> Exponential(uint64_t seed, size_t n, double mean_ns) {
  Rng rng(seed);
  std::vector<int64_t> v(n);
  for (int64_t& x : v) x = std::llround(-mean_ns * std::log(1.0 - rng.Uniform()));
  return v;
}

// 90% around 50 us (sd 5 us), 10% around 5 ms (sd 500 us): a fast path and a slow one.
std::vector<int64_t> Bimodal(uint64_t seed, size_t n) {
  Rng rng(seed);
  std::vector<int64_t> v(n);
  for (int64_t& x : v) {
    const bool slow = rng.Bernoulli(0.1);
    const double mean = slow ? 5e6 : 5e4, sd = slow ? 5e5 : 5e3;
    x = std::max<int64_t>(0, std::llround(mean + sd * rng.Normal()));
  }
  return v;
}

class HistogramDigits : public ::testing::TestWithParam<int> {};

TEST_P(HistogramDigits, LayoutMeetsTheStatedPrecision) {
  const LatencyHistogram h(GetParam());
  EXPECT_EQ(h.significant_digits(), GetParam());
  EXPECT_EQ(h.highest_trackable(), LatencyHistogram::kOneHourNs);
  EXPECT_LE(h.RelativePrecision(), std::pow(10.0, -GetParam()));
  EXPECT_GT(h.RelativePrecision(), 0.0);
}

TEST_P(HistogramDigits, BucketsAreContiguousAndNarrowEnough) {
  const LatencyHistogram h(GetParam());
  // Walk bucket by bucket across several powers of two, from 0 up.
  int64_t v = 0;
  for (int step = 0; step < 200000 && v < 50'000'000; ++step) {
    const int64_t lo = h.LowestEquivalent(v);
    const int64_t hi = h.HighestEquivalent(v);
    ASSERT_EQ(lo, v) << "bucket should start where the previous one ended";
    ASSERT_GE(hi, lo);
    EXPECT_LE(static_cast<double>(hi - lo), h.RelativePrecision() * static_cast<double>(lo))
        << "bucket [" << lo << ", " << hi << "]";
    ASSERT_EQ(h.LowestEquivalent(hi), lo);
    v = hi + 1;
  }
  // Random values over the whole range lie in their bucket.
  Rng rng(11);
  for (int i = 0; i < 100000; ++i) {
    const int64_t x =
        static_cast<int64_t>(rng.Below(static_cast<uint64_t>(LatencyHistogram::kOneHourNs)));
    EXPECT_LE(h.LowestEquivalent(x), x);
    EXPECT_GE(h.HighestEquivalent(x), x);
  }
}

TEST_P(HistogramDigits, UniformPercentilesMatchExactQuantiles) {
  const std::vector<int64_t> s = Uniform(1, 200000, 1'000, 10'000'000);  // 1 us .. 10 ms
  ExpectMatches(RecordAll(s, GetParam()), s, "uniform");
}

TEST_P(HistogramDigits, ExponentialPercentilesMatchExactQuantiles) {
  const std::vector<int64_t> s = Exponential(2, 200000, 50'000.0);  // mean 50 us
  ExpectMatches(RecordAll(s, GetParam()), s, "exponential");
}

TEST_P(HistogramDigits, ConstantGivesTheConstantAtEveryPercentile) {
  const std::vector<int64_t> s(1000, 123'456);
  const LatencyHistogram h = RecordAll(s, GetParam());
  ExpectMatches(h, s, "constant");
  // Min and max bound the answer, so one distinct value is reported exactly.
  for (double p : kPercentiles) EXPECT_EQ(h.Percentile(p), 123'456) << "p" << p;
  EXPECT_DOUBLE_EQ(h.Mean(), 123'456.0);
}

TEST_P(HistogramDigits, BimodalPercentilesMatchExactQuantiles) {
  const std::vector<int64_t> s = Bimodal(3, 200000);
  const LatencyHistogram h = RecordAll(s, GetParam());
  ExpectMatches(h, s, "bimodal");
  // The modes are where they should be: the median on the fast one, p95 on the slow one.
  EXPECT_LT(h.Percentile(50), 100'000);
  EXPECT_GT(h.Percentile(95), 1'000'000);
}

TEST_P(HistogramDigits, WideRangeFromNanosecondsToMinutes) {
  // Log-uniform over 1 ns .. 10 min: every bucket scale is exercised.
  Rng rng(4);
  std::vector<int64_t> s(100000);
  for (int64_t& x : s) x = std::llround(std::exp(rng.Uniform() * std::log(6e11)));
  ExpectMatches(RecordAll(s, GetParam()), s, "log-uniform");
}

TEST_P(HistogramDigits, MergeEqualsRecordingIntoOne) {
  const std::vector<int64_t> s = Bimodal(5, 50000);
  const LatencyHistogram whole = RecordAll(s, GetParam());
  // Four uneven parts, one of them empty, merged in a different order.
  std::vector<LatencyHistogram> parts(4, LatencyHistogram(GetParam()));
  for (size_t i = 0; i < s.size(); ++i) parts[(i * i) % 3].Record(s[i]);
  LatencyHistogram merged(GetParam());
  for (size_t k : {3u, 2u, 0u, 1u}) ASSERT_TRUE(merged.Merge(parts[k]));
  EXPECT_EQ(merged.Count(), whole.Count());
  EXPECT_EQ(merged.Min(), whole.Min());
  EXPECT_EQ(merged.Max(), whole.Max());
  EXPECT_EQ(merged.Mean(), whole.Mean());
  EXPECT_EQ(merged.clamped_count(), whole.clamped_count());
  for (double p = 0.0; p <= 100.0; p += 0.25) {
    EXPECT_EQ(merged.Percentile(p), whole.Percentile(p)) << "p" << p;
  }
}

INSTANTIATE_TEST_SUITE_P(Digits, HistogramDigits, ::testing::Values(1, 2, 3, 4),
                         [](const auto& info) { return std::to_string(info.param) + "digits"; });

TEST(LatencyHistogram, EmptyReportsZeros) {
  const LatencyHistogram h;
  EXPECT_EQ(h.Count(), 0u);
  EXPECT_EQ(h.Min(), 0);
  EXPECT_EQ(h.Max(), 0);
  EXPECT_EQ(h.Mean(), 0.0);
  EXPECT_EQ(h.Percentile(50), 0);
  EXPECT_EQ(h.Percentile(100), 0);
  EXPECT_EQ(h.clamped_count(), 0u);
}

TEST(LatencyHistogram, OneValueIsEveryPercentile) {
  LatencyHistogram h(2);
  h.Record(987'654'321);
  for (double p : kPercentiles) EXPECT_EQ(h.Percentile(p), 987'654'321) << "p" << p;
  EXPECT_EQ(h.Mean(), 987'654'321.0);
}

TEST(LatencyHistogram, ValuesAtBucketEdges) {
  LatencyHistogram h(3);  // S = 2048: exact below 2048, then buckets of 2, 4, 8, ...
  EXPECT_EQ(h.LowestEquivalent(2047), 2047);
  EXPECT_EQ(h.HighestEquivalent(2047), 2047);
  EXPECT_EQ(h.LowestEquivalent(2048), 2048);
  EXPECT_EQ(h.HighestEquivalent(2048), 2049);
  EXPECT_EQ(h.LowestEquivalent(4095), 4094);
  EXPECT_EQ(h.LowestEquivalent(4096), 4096);
  EXPECT_EQ(h.HighestEquivalent(4096), 4099);
  // The lowest and the highest value of one bucket are counted together; the next value
  // starts a new bucket.
  h.Record(4096);
  h.Record(4099);
  h.Record(4100);
  EXPECT_EQ(h.Percentile(33.3), 4099);  // rank 1: bucket [4096, 4099]
  EXPECT_EQ(h.Percentile(66.6), 4099);  // rank 2: same bucket
  EXPECT_EQ(h.Percentile(66.7), 4100);  // rank 3: bucket [4100, 4103], limited by Max()
  EXPECT_EQ(h.Min(), 4096);
  // The top of the range lies in a bucket of the layout, whose values are all recordable.
  const int64_t top = LatencyHistogram::kOneHourNs;
  EXPECT_LE(h.LowestEquivalent(top), top);
  EXPECT_GE(h.HighestEquivalent(top), top);
  LatencyHistogram t(3);
  t.Record(top);
  EXPECT_EQ(t.Percentile(50), top);
}

TEST(LatencyHistogram, ValuesBeyondTheRangeAreClampedAndCounted) {
  LatencyHistogram h(2, 1'000'000);  // tracks 0 .. 1 ms
  h.Record(-5);
  h.Record(500);
  h.Record(2'000'000);
  h.Record(std::numeric_limits<int64_t>::max());
  EXPECT_EQ(h.Count(), 4u);
  EXPECT_EQ(h.clamped_count(), 3u);
  EXPECT_EQ(h.Min(), 0);
  EXPECT_EQ(h.Max(), 1'000'000);
  EXPECT_EQ(h.Percentile(100), 1'000'000);
  EXPECT_EQ(h.Percentile(25), 0);
  EXPECT_DOUBLE_EQ(h.Mean(), (0.0 + 500.0 + 1e6 + 1e6) / 4.0);
  // An hour and more in the default layout.
  LatencyHistogram d;
  d.Record(LatencyHistogram::kOneHourNs);
  d.Record(LatencyHistogram::kOneHourNs + 1);
  EXPECT_EQ(d.clamped_count(), 1u);
  EXPECT_EQ(d.Max(), LatencyHistogram::kOneHourNs);
}

TEST(LatencyHistogram, RecordNCountsOccurrences) {
  LatencyHistogram a(3), b(3);
  a.RecordN(1'500, 3);
  a.RecordN(80'000, 1);
  a.RecordN(42, 0);  // nothing
  for (int i = 0; i < 3; ++i) b.Record(1'500);
  b.Record(std::chrono::nanoseconds(80'000));
  EXPECT_EQ(a.Count(), 4u);
  EXPECT_EQ(a.Min(), 1'500);
  for (double p : kPercentiles) EXPECT_EQ(a.Percentile(p), b.Percentile(p)) << "p" << p;
  EXPECT_EQ(a.Mean(), b.Mean());
}

TEST(LatencyHistogram, MergeRefusesADifferentLayoutAndChangesNothing) {
  LatencyHistogram a(3), b(2), c(3, 1'000'000);
  a.Record(10);
  b.Record(20);
  c.Record(30);
  EXPECT_FALSE(a.Merge(b));
  EXPECT_FALSE(a.Merge(c));
  EXPECT_EQ(a.Count(), 1u);
  EXPECT_EQ(a.Max(), 10);
  LatencyHistogram empty(3);
  EXPECT_TRUE(a.Merge(empty));
  EXPECT_EQ(a.Count(), 1u);
  EXPECT_TRUE(empty.Merge(a));
  EXPECT_EQ(empty.Min(), 10);
  EXPECT_EQ(empty.Max(), 10);
}

TEST(LatencyHistogram, ResetForgetsValuesAndKeepsTheLayout) {
  LatencyHistogram h(2);
  h.Record(-1);
  h.Record(1'000);
  const size_t bytes = h.MemoryBytes();
  h.Reset();
  EXPECT_EQ(h.Count(), 0u);
  EXPECT_EQ(h.clamped_count(), 0u);
  EXPECT_EQ(h.Percentile(50), 0);
  EXPECT_EQ(h.MemoryBytes(), bytes);
  h.Record(7);
  EXPECT_EQ(h.Min(), 7);
  EXPECT_EQ(h.Max(), 7);
}

TEST(LatencyHistogram, OutOfRangeArgumentsAreClamped) {
  EXPECT_EQ(LatencyHistogram(0).significant_digits(), 1);
  EXPECT_EQ(LatencyHistogram(9).significant_digits(), 4);
  EXPECT_EQ(LatencyHistogram(3, 10).highest_trackable(), 2000);
}

TEST(LatencyHistogram, MemoryIsSmall) {
  // The sizes the header promises (the counts, 8 bytes each).
  EXPECT_LE(LatencyHistogram(2).MemoryBytes(), 40u * 1024);
  EXPECT_LE(LatencyHistogram(3).MemoryBytes(), 280u * 1024);
}

TEST(LatencyHistogram, RankIsNearestRank) {
  EXPECT_EQ(LatencyHistogram::Rank(50, 10), 5u);
  EXPECT_EQ(LatencyHistogram::Rank(51, 10), 6u);
  EXPECT_EQ(LatencyHistogram::Rank(99.9, 100000), 99900u);
  EXPECT_EQ(LatencyHistogram::Rank(0.0001, 10), 1u);
  EXPECT_EQ(LatencyHistogram::Rank(100, 10), 10u);
  EXPECT_EQ(LatencyHistogram::Rank(50, 0), 0u);
}

}  // namespace
}  // namespace messplus::loadgen
