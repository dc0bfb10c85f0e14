// The load generator's workload: generated prompt lengths follow the requested distribution,
// tenants are mixed by their shares, prompts from a data file are read in a seeded order,
// and every draw is a pure function of the seed.
//
// Tolerances are 6 standard errors of the statistic (a correct generator is outside with
// probability ~2e-9; the draws are seeded, so each run is in fact the same):
//  * a mean of n lengths with standard deviation sd: 6 sd / sqrt(n);
//  * a share p estimated from n draws: 6 sqrt(p (1 - p) / n).
// Rounding a length to whole characters moves each value by at most 0.5 (and a bin edge by
// 0.5 / mean of probability), well inside these bounds at the sizes used.
#include "tools/loadgen/workload.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "simulator/dataset.h"

namespace messplus::loadgen {
namespace {

constexpr double kSigmas = 6.0;
constexpr size_t kPool = 20'000;

double Tolerance(double sd, size_t n) { return kSigmas * sd / std::sqrt(static_cast<double>(n)); }
double ShareTolerance(double p, size_t n) {
  return kSigmas * std::sqrt(p * (1.0 - p) / static_cast<double>(n));
}

PromptSource Generate(LengthDistribution d, double mean, uint64_t seed, size_t pool = kPool,
                      const std::string& task = "") {
  GeneratedPromptOptions o;
  o.mean_chars = mean;
  o.distribution = d;
  o.pool = pool;
  o.task = task;
  Result<PromptSource> s = PromptSource::Generated(o, seed);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(*s);
}

std::vector<double> Lengths(const PromptSource& s) {
  std::vector<double> out;
  for (size_t i = 0; i < s.size(); ++i) out.push_back(static_cast<double>(s.Get(i).text.size()));
  return out;
}

double Mean(const std::vector<double>& v) {
  double sum = 0.0;
  for (double x : v) sum += x;
  return sum / static_cast<double>(v.size());
}

TEST(GeneratedPrompts, FixedLengthIsExact) {
  const PromptSource s = Generate(LengthDistribution::kFixed, 137.0, 5, 2000, "arc");
  ASSERT_EQ(s.size(), 2000u);
  for (size_t i = 0; i < s.size(); ++i) {
    const PromptItem item = s.Get(i);
    ASSERT_EQ(item.text.size(), 137u) << "prompt " << i;
    EXPECT_EQ(item.task, "arc");
    EXPECT_EQ(item.row, -1);
    // Words of lowercase letters separated by single spaces.
    EXPECT_EQ(item.text.find_first_not_of("abcdefghijklmnopqrstuvwxyz "), std::string::npos);
    EXPECT_NE(item.text.front(), ' ');
    EXPECT_EQ(item.text.find("  "), std::string::npos);
  }
  EXPECT_DOUBLE_EQ(s.mean_chars(), 137.0);
  // The pool is used round robin.
  EXPECT_EQ(s.Get(0).text, s.Get(2000).text);
  EXPECT_EQ(s.Get(17).text, s.Get(4017).text);
  // A one-character prompt is one character.
  const PromptSource one = Generate(LengthDistribution::kFixed, 1.0, 5, 10);
  for (size_t i = 0; i < one.size(); ++i) EXPECT_EQ(one.Get(i).text.size(), 1u);
}

TEST(GeneratedPrompts, UniformLengthsCoverHalfToThreeHalvesOfTheMean) {
  constexpr double kMean = 200.0;
  const PromptSource s = Generate(LengthDistribution::kUniform, kMean, 11);
  const std::vector<double> len = Lengths(s);
  ASSERT_EQ(len.size(), kPool);
  for (double l : len) {
    ASSERT_GE(l, kMean / 2) << "below mean/2";
    ASSERT_LE(l, 3 * kMean / 2) << "above 3 mean/2";
  }
  // Uniform on an interval of width `mean`: standard deviation mean / sqrt(12).
  const double sd = kMean / std::sqrt(12.0);
  EXPECT_NEAR(Mean(len), kMean, Tolerance(sd, kPool));
  EXPECT_NEAR(s.mean_chars(), Mean(len), 1e-9);
  // Each quarter of the interval holds a quarter of the prompts.
  std::vector<size_t> quarters(4, 0);
  for (double l : len) {
    ++quarters[std::min<size_t>(3, static_cast<size_t>((l - kMean / 2) / (kMean / 4)))];
  }
  for (size_t q = 0; q < 4; ++q) {
    EXPECT_NEAR(static_cast<double>(quarters[q]) / kPool, 0.25, ShareTolerance(0.25, kPool))
        << "quarter " << q;
  }
}

TEST(GeneratedPrompts, ExponentialLengthsHaveTheMean) {
  constexpr double kMean = 200.0;
  const PromptSource s = Generate(LengthDistribution::kExponential, kMean, 13);
  const std::vector<double> len = Lengths(s);
  for (double l : len) ASSERT_GE(l, 1.0);
  // Exponential: the standard deviation equals the mean.
  EXPECT_NEAR(Mean(len), kMean, Tolerance(kMean, kPool));
  // P(L > mean) = 1/e, P(L > 3 mean) = e^-3: the tail is exponential, not uniform.
  for (const double k : {1.0, 3.0}) {
    const double p = std::exp(-k);
    const double share = static_cast<double>(std::count_if(
                             len.begin(), len.end(), [&](double l) { return l > k * kMean; })) /
                         kPool;
    EXPECT_NEAR(share, p, ShareTolerance(p, kPool)) << "P(L > " << k << " mean)";
  }
  // Some prompts are much longer than the mean (a uniform could not reach 3x).
  EXPECT_GT(*std::max_element(len.begin(), len.end()), 3 * kMean);
}

TEST(GeneratedPrompts, DeterministicBySeed) {
  for (LengthDistribution d : {LengthDistribution::kFixed, LengthDistribution::kUniform,
                               LengthDistribution::kExponential}) {
    const PromptSource a = Generate(d, 80.0, 21, 500);
    const PromptSource b = Generate(d, 80.0, 21, 500);
    const PromptSource c = Generate(d, 80.0, 22, 500);
    size_t same = 0;
    for (size_t i = 0; i < 500; ++i) {
      ASSERT_EQ(a.Get(i).text, b.Get(i).text) << LengthDistributionName(d) << " " << i;
      same += a.Get(i).text == c.Get(i).text ? 1 : 0;
    }
    EXPECT_LT(same, 5u) << LengthDistributionName(d) << ": seeds 21 and 22 gave the same prompts";
  }
}

TEST(GeneratedPrompts, RejectsABadMeanOrAnEmptyPool) {
  GeneratedPromptOptions o;
  o.mean_chars = 0.5;
  EXPECT_EQ(PromptSource::Generated(o, 1).status().code(), StatusCode::kInvalidArgument);
  o.mean_chars = std::nan("");
  EXPECT_EQ(PromptSource::Generated(o, 1).status().code(), StatusCode::kInvalidArgument);
  o.mean_chars = 10.0;
  o.pool = 0;
  EXPECT_EQ(PromptSource::Generated(o, 1).status().code(), StatusCode::kInvalidArgument);
}

TEST(LengthDistribution, ParsesItsNames) {
  EXPECT_EQ(*ParseLengthDistribution("fixed"), LengthDistribution::kFixed);
  EXPECT_EQ(*ParseLengthDistribution("uniform"), LengthDistribution::kUniform);
  EXPECT_EQ(*ParseLengthDistribution("exponential"), LengthDistribution::kExponential);
  EXPECT_EQ(*ParseLengthDistribution("exp"), LengthDistribution::kExponential);
  for (const char* bad : {"", "normal", "Fixed", "uniform "}) {
    Result<LengthDistribution> r = ParseLengthDistribution(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("fixed, uniform or exponential"), std::string::npos);
  }
  for (LengthDistribution d : {LengthDistribution::kFixed, LengthDistribution::kUniform,
                               LengthDistribution::kExponential}) {
    EXPECT_EQ(*ParseLengthDistribution(LengthDistributionName(d)), d);
  }
}

// ---- tenants ------------------------------------------------------------------------------

TEST(TenantShares, ParsesAndRejects) {
  Result<std::vector<TenantShare>> ok = ParseTenantShares({"gold=0.2", "default=0.8", "x=3"});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  ASSERT_EQ(ok->size(), 3u);
  EXPECT_EQ((*ok)[0].name, "gold");
  EXPECT_DOUBLE_EQ((*ok)[0].share, 0.2);
  EXPECT_DOUBLE_EQ((*ok)[2].share, 3.0);
  EXPECT_TRUE(ParseTenantShares({}).ok());
  for (const char* bad : {"gold", "=0.2", "gold=", "gold=0", "gold=-1", "gold=abc", "gold=0.2x",
                          "gold=inf", "gold=nan"}) {
    Result<std::vector<TenantShare>> r = ParseTenantShares({bad});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("tenant '"), std::string::npos) << r.status().message();
  }
  Result<std::vector<TenantShare>> twice = ParseTenantShares({"a=1", "b=1", "a=2"});
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("'a' is given twice"), std::string::npos);
}

TEST(TenantMix, SharesFollowTheWeights) {
  constexpr size_t kRequests = 100'000;
  // Weights need not sum to 1: 1 : 3 : 6.
  TenantMix mix({{"gold", 1.0}, {"silver", 3.0}, {"bronze", 6.0}}, 77);
  ASSERT_EQ(mix.shares().size(), 3u);
  EXPECT_NEAR(mix.shares()[0].share, 0.1, 1e-12);
  EXPECT_NEAR(mix.shares()[1].share, 0.3, 1e-12);
  EXPECT_NEAR(mix.shares()[2].share, 0.6, 1e-12);
  std::map<std::string, size_t> count;
  for (uint64_t seq = 0; seq < kRequests; ++seq) ++count[mix.Pick(seq)];
  EXPECT_EQ(count.size(), 3u);
  for (const auto& [name, p] : std::vector<std::pair<std::string, double>>{
           {"gold", 0.1}, {"silver", 0.3}, {"bronze", 0.6}}) {
    EXPECT_NEAR(static_cast<double>(count[name]) / kRequests, p, ShareTolerance(p, kRequests))
        << name;
  }
}

TEST(TenantMix, DeterministicBySeedAndSequenceNumber) {
  TenantMix a({{"gold", 1.0}, {"default", 1.0}}, 5);
  TenantMix b({{"gold", 1.0}, {"default", 1.0}}, 5);
  TenantMix c({{"gold", 1.0}, {"default", 1.0}}, 6);
  size_t differ = 0;
  // The pick of request i does not depend on which requests were picked before it.
  for (uint64_t seq = 1000; seq-- > 0;) {
    ASSERT_EQ(a.Pick(seq), b.Pick(seq)) << seq;
    differ += a.Pick(seq) != c.Pick(seq) ? 1 : 0;
  }
  std::vector<std::string> forward;
  for (uint64_t seq = 0; seq < 1000; ++seq) forward.push_back(a.Pick(seq));
  for (uint64_t seq = 0; seq < 1000; ++seq) ASSERT_EQ(b.Pick(seq), forward[seq]);
  // Two independent fair coins disagree about half the time (500 +- 6 * 16).
  EXPECT_GT(differ, 400u);
  EXPECT_LT(differ, 600u);
  // An empty mix leaves the tenant out.
  TenantMix none;
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none.Pick(3), "");
  // One tenant takes every request.
  TenantMix only({{"solo", 0.5}}, 1);
  for (uint64_t seq = 0; seq < 100; ++seq) ASSERT_EQ(only.Pick(seq), "solo");
}

// ---- prompts from a data file ---------------------------------------------------------------

class DataFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/messplus-lg-XXXXXX";
    ASSERT_NE(mkdtemp(templ), nullptr);
    dir_ = templ;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::string dir_;
};

// The ../shared/data format: id, benchmark, prompt, score__<model>, energy_j__<model>.
constexpr char kCsv[] =
    "id,benchmark,prompt,score__small,energy_j__small,score__big,energy_j__big\n"
    "q0,arc,\"Why is the sky blue?\",0,1.5,1,40\n"
    "q1,arc,\"What is 2+2, exactly?\",1,1.0,1,35\n"
    "q2,mmlu,\"Name a \"\"prime\"\" number\",0.5,2.0,0,50\n"
    "q3,mmlu,Explain entropy,1,1.2,0,45\n"
    "q4,gsm8k,Add 17 and 25,0,1.1,1,38\n";

TEST_F(DataFile, PromptsComeFromTheFileInASeededOrder) {
  Result<simulator::Dataset> data = simulator::LoadDataset(Write("ok.csv", kCsv), {});
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  ASSERT_EQ(data->rows(), 5u);
  Result<PromptSource> s = PromptSource::FromDataset(*data, 3);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->data(), &*data);
  EXPECT_EQ(s->size(), 5u);
  // The first rows() requests visit every row once, then the order repeats.
  std::set<int64_t> rows;
  for (uint64_t seq = 0; seq < 5; ++seq) {
    const PromptItem item = s->Get(seq);
    ASSERT_GE(item.row, 0);
    ASSERT_LT(item.row, 5);
    rows.insert(item.row);
    EXPECT_EQ(item.text, data->prompts[static_cast<size_t>(item.row)]);
    EXPECT_EQ(item.task, data->tasks[static_cast<size_t>(item.row)]);
    EXPECT_EQ(s->Get(seq + 5).row, item.row);
    EXPECT_EQ(s->Get(seq + 10).text, item.text);
  }
  EXPECT_EQ(rows.size(), 5u);
  // The CSV's quoting is undone.
  EXPECT_NE(std::find(data->prompts.begin(), data->prompts.end(), "Name a \"prime\" number"),
            data->prompts.end());
  EXPECT_NE(std::find(data->prompts.begin(), data->prompts.end(), "What is 2+2, exactly?"),
            data->prompts.end());
  double chars = 0.0;
  for (const std::string& p : data->prompts) chars += static_cast<double>(p.size());
  EXPECT_DOUBLE_EQ(s->mean_chars(), chars / 5.0);
  // Same seed, same order.
  Result<PromptSource> again = PromptSource::FromDataset(*data, 3);
  for (uint64_t seq = 0; seq < 10; ++seq) EXPECT_EQ(again->Get(seq).row, s->Get(seq).row);
  // Some seed gives another order (5! = 120 orders).
  bool other = false;
  for (uint64_t seed = 4; seed < 40 && !other; ++seed) {
    Result<PromptSource> t = PromptSource::FromDataset(*data, seed);
    for (uint64_t seq = 0; seq < 5; ++seq) other = other || t->Get(seq).row != s->Get(seq).row;
  }
  EXPECT_TRUE(other);
}

TEST_F(DataFile, FeedbackUsesTheRecordedScoreElseASeededBernoulli) {
  Result<simulator::Dataset> data = simulator::LoadDataset(Write("ok.csv", kCsv), {});
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  const int big = data->ModelIndex("big");
  const int small = data->ModelIndex("small");
  ASSERT_GE(big, 0);
  ASSERT_GE(small, 0);
  for (size_t row = 0; row < data->rows(); ++row) {
    const auto r = static_cast<int64_t>(row);
    EXPECT_EQ(FeedbackSatisfaction(&*data, r, big, 0.5, 1, row, 0),
              data->Score(row, static_cast<size_t>(big)));
    EXPECT_EQ(FeedbackSatisfaction(&*data, r, small, 0.5, 1, row, 1),
              data->Score(row, static_cast<size_t>(small)));
  }
  // Without data (or for a model it does not know): Bernoulli(p), the same for the same draw.
  constexpr size_t kDraws = 100'000;
  double sum = 0.0;
  for (uint64_t seq = 0; seq < kDraws; ++seq) {
    const double s = FeedbackSatisfaction(nullptr, -1, -1, 0.3, 9, seq, 0);
    ASSERT_TRUE(s == 0.0 || s == 1.0);
    ASSERT_EQ(s, FeedbackSatisfaction(&*data, 0, -1, 0.3, 9, seq, 0));
    sum += s;
  }
  EXPECT_NEAR(sum / kDraws, 0.3, ShareTolerance(0.3, kDraws));
  EXPECT_EQ(FeedbackSatisfaction(nullptr, -1, -1, 0.0, 9, 1, 0), 0.0);
  EXPECT_EQ(FeedbackSatisfaction(nullptr, -1, -1, 1.0, 9, 1, 0), 1.0);
}

TEST_F(DataFile, ABrokenFileIsAClearError) {
  // A score that is not a number: the error names the file, the CSV line and the column.
  const std::string bad_cell = Write(
      "bad_cell.csv",
      "id,benchmark,prompt,score__small,energy_j__small\nq0,arc,hello,1,1.0\nq1,arc,hi,oops,1.0\n");
  Result<simulator::Dataset> r = simulator::LoadDataset(bad_cell, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(bad_cell + ":3"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("score__small"), std::string::npos) << r.status().message();

  // No prompt column.
  const std::string no_prompt =
      Write("no_prompt.csv", "id,benchmark,score__small,energy_j__small\nq0,arc,1,1.0\n");
  r = simulator::LoadDataset(no_prompt, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("missing column 'prompt'"), std::string::npos)
      << r.status().message();

  // A record with fewer fields than the header.
  const std::string short_row =
      Write("short.csv", "id,benchmark,prompt,score__small,energy_j__small\nq0,arc,hello,1\n");
  r = simulator::LoadDataset(short_row, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(short_row + ":2"), std::string::npos) << r.status().message();

  // A header and no rows.
  const std::string empty =
      Write("empty.csv", "id,benchmark,prompt,score__small,energy_j__small\n");
  r = simulator::LoadDataset(empty, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no rows"), std::string::npos) << r.status().message();

  // A missing file.
  r = simulator::LoadDataset(dir_ + "/absent.csv", {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("absent.csv"), std::string::npos);

  // A dataset without rows is not a prompt source.
  simulator::Dataset none;
  EXPECT_EQ(PromptSource::FromDataset(none, 1).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace messplus::loadgen
