#include "simulator/dataset.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "simulator/csv.h"

namespace messplus::simulator {
namespace {

namespace fs = std::filesystem;

// Each test gets its own directory under the gtest temp dir, removed afterwards.
class DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) / ("messplus_dataset_test_" + std::string(info->name()) +
                                             "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string Write(const std::string& name, std::string_view content) {
    const fs::path path = dir_ / name;
    std::ofstream out(path, std::ios::binary);
    out << content;
    return path.string();
  }

  fs::path dir_;
};

// Asserts that `status` has `code` and that its one-line message holds every piece.
void ExpectError(const Status& status, StatusCode code,
                 std::initializer_list<std::string_view> pieces) {
  EXPECT_EQ(status.code(), code) << status.ToString();
  EXPECT_EQ(status.message().find('\n'), std::string::npos) << status.message();
  for (const std::string_view piece : pieces) {
    EXPECT_NE(status.message().find(piece), std::string::npos)
        << "missing '" << piece << "' in: " << status.message();
  }
}

// A small file in the format of ../shared/data, models in reverse cost order on purpose.
constexpr std::string_view kSharedCsv =
    "id,benchmark,prompt,metric,score__big,energy_j__big,latency_s__big,"
    "score__small,energy_j__small,latency_s__small\n"
    "q-0,arc,\"Plain, with a comma\",acc,1.0,900,3.5,0.0,40,0.25\n"
    "q-1,arc,\"He said \"\"no\"\"\nand left\",acc,0.5,1100,4.5,1,60,0.75\n"
    "q-2,boolq,short,acc,1,1000,4,1,50,0.5\n";

TEST_F(DatasetTest, LoadsSharedFormat) {
  const std::string path = Write("shared.csv", kSharedCsv);
  Result<Dataset> data = LoadDataset(path, {});
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->models, (std::vector<std::string>{"small", "big"}));
  EXPECT_EQ(data->cost_kind, "energy_j");
  ASSERT_EQ(data->rows(), 3u);
  EXPECT_EQ(data->ids, (std::vector<std::string>{"q-0", "q-1", "q-2"}));
  EXPECT_EQ(data->tasks, (std::vector<std::string>{"arc", "arc", "boolq"}));
  EXPECT_EQ(data->prompts[0], "Plain, with a comma");
  EXPECT_EQ(data->prompts[1], "He said \"no\"\nand left");
  EXPECT_EQ(data->prompts[2], "short");
  EXPECT_DOUBLE_EQ(data->Score(1, 0), 1.0);
  EXPECT_DOUBLE_EQ(data->Score(1, 1), 0.5);
  EXPECT_DOUBLE_EQ(data->Cost(0, 0), 40.0);
  EXPECT_DOUBLE_EQ(data->Cost(0, 1), 900.0);
  ASSERT_EQ(data->latency_s.size(), 6u);
  EXPECT_DOUBLE_EQ(data->latency_s[1 * 2 + 0], 0.75);
  EXPECT_DOUBLE_EQ(data->latency_s[1 * 2 + 1], 4.5);
  EXPECT_EQ(data->ModelIndex("big"), 1);
  EXPECT_EQ(data->ModelIndex("small"), 0);
  EXPECT_EQ(data->ModelIndex("medium"), -1);
  EXPECT_DOUBLE_EQ(data->MeanScore(0), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(data->MeanScore(1), 2.5 / 3.0);
  EXPECT_DOUBLE_EQ(data->MeanCost(0), 50.0);
  EXPECT_DOUBLE_EQ(data->MeanCost(1), 1000.0);
}

TEST_F(DatasetTest, LoadsCrLfFileWithByteOrderMark) {
  std::string crlf = "\xEF\xBB\xBF";
  for (const char c : kSharedCsv) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  Result<Dataset> data = LoadDataset(Write("crlf.csv", crlf), {});
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->rows(), 3u);
  EXPECT_EQ(data->ids[0], "q-0");  // the BOM is not part of the first column name
  EXPECT_EQ(data->prompts[1], "He said \"no\"\r\nand left");
  EXPECT_DOUBLE_EQ(data->Cost(2, 1), 1000.0);
  EXPECT_DOUBLE_EQ(data->latency_s[2 * 2 + 1], 4.0);  // no '\r' left on the last cell
}

TEST_F(DatasetTest, LoadsMessPlusFormat) {
  const std::string path =
      Write("messplus.csv",
            "doc_id,input_text,benchmark_name,label_s,acc_s,energy_consumption_s,inference_time_s,"
            "label_l,acc_l,energy_consumption_l,inference_time_l\n"
            "7,\"What, again?\",piqa,1,1,30.5,0.2,1,1,900,3\n"
            "9,Why?,piqa,0,0,31.5,0.3,1,1,1000,4\n");
  Result<Dataset> data = LoadDataset(path, {});
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->models, (std::vector<std::string>{"s", "l"}));
  EXPECT_EQ(data->cost_kind, "energy_j");
  EXPECT_EQ(data->ids, (std::vector<std::string>{"7", "9"}));
  EXPECT_EQ(data->tasks, (std::vector<std::string>{"piqa", "piqa"}));
  EXPECT_EQ(data->prompts[0], "What, again?");
  EXPECT_DOUBLE_EQ(data->Cost(1, 0), 31.5);
  EXPECT_DOUBLE_EQ(data->Score(1, 0), 0.0);
  ASSERT_EQ(data->latency_s.size(), 4u);
  EXPECT_DOUBLE_EQ(data->latency_s[1 * 2 + 1], 4.0);

  LoadOptions latency;
  latency.cost = "latency_s";
  Result<Dataset> by_time = LoadDataset(path, latency);
  ASSERT_TRUE(by_time.ok()) << by_time.status().ToString();
  EXPECT_EQ(by_time->cost_kind, "latency_s");
  EXPECT_DOUBLE_EQ(by_time->Cost(0, 1), 3.0);

  LoadOptions usd;
  usd.cost = "cost_usd";
  ExpectError(LoadDataset(path, usd).status(), StatusCode::kInvalidArgument, {path, "cost_usd"});
}

TEST_F(DatasetTest, MessPlusFormatWithoutDocIdOrBenchmarkUsesRowIndexAndStem) {
  const std::string path = Write("my_bench.csv",
                                 "input_text,label_a,energy_consumption_a\n"
                                 "p0,1,2\n"
                                 "p1,0,3\n");
  Result<Dataset> data = LoadDataset(path, {});
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->ids, (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(data->tasks, (std::vector<std::string>{"my_bench", "my_bench"}));
  EXPECT_TRUE(data->latency_s.empty());
}

TEST_F(DatasetTest, ModelsOrderedByMeanCostTiesKeepFileOrder) {
  const std::string path = Write("order.csv",
                                 "id,benchmark,prompt,score__d,cost_usd__d,score__c,cost_usd__c,"
                                 "score__b,cost_usd__b,score__a,cost_usd__a\n"
                                 "0,t,p,0,9,0.25,2,0.5,1,1,2\n"
                                 "1,t,p,0,7,0.25,2,0.5,3,1,2\n");
  Result<Dataset> data = LoadDataset(path, {});
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  // Means: d 8, c 2, b 2, a 2: the three tied models keep their file order c, b, a.
  EXPECT_EQ(data->models, (std::vector<std::string>{"c", "b", "a", "d"}));
  // Scores and costs moved with their models.
  EXPECT_DOUBLE_EQ(data->Score(0, 0), 0.25);
  EXPECT_DOUBLE_EQ(data->Score(0, 1), 0.5);
  EXPECT_DOUBLE_EQ(data->Score(0, 2), 1.0);
  EXPECT_DOUBLE_EQ(data->Cost(1, 1), 3.0);
  EXPECT_DOUBLE_EQ(data->Cost(1, 3), 7.0);
}

TEST_F(DatasetTest, CostKindDefaultAndSelection) {
  // No energy column: the default falls to cost_usd, then to latency_s.
  const std::string usd_and_time = Write("usd.csv",
                                         "id,benchmark,prompt,score__a,cost_usd__a,latency_s__a,"
                                         "score__b,cost_usd__b,latency_s__b\n"
                                         "0,t,p,1,0.002,2,0,0.001,5\n");
  Result<Dataset> data = LoadDataset(usd_and_time, {});
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->cost_kind, "cost_usd");
  EXPECT_EQ(data->models, (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(data->latency_s.size(), 2u);

  LoadOptions latency;
  latency.cost = "latency_s";
  data = LoadDataset(usd_and_time, latency);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->cost_kind, "latency_s");
  EXPECT_EQ(data->models, (std::vector<std::string>{"a", "b"}));
  EXPECT_DOUBLE_EQ(data->Cost(0, 1), 5.0);

  const std::string time_only = Write("time.csv",
                                      "id,benchmark,prompt,score__a,latency_s__a\n"
                                      "0,t,p,1,2\n");
  data = LoadDataset(time_only, {});
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->cost_kind, "latency_s");

  // A kind the file lacks is a missing column; an unknown kind is rejected.
  LoadOptions energy;
  energy.cost = "energy_j";
  ExpectError(LoadDataset(usd_and_time, energy).status(), StatusCode::kInvalidArgument,
              {usd_and_time, "energy_j__a"});
  LoadOptions tokens;
  tokens.cost = "tokens";
  ExpectError(LoadDataset(usd_and_time, tokens).status(), StatusCode::kInvalidArgument, {"tokens"});
}

// RouteLLM-like: no cost columns, a subject and a contaminated flag.
constexpr std::string_view kRouteLlmCsv =
    "id,benchmark,subject,prompt,score__weak,score__strong,contaminated\n"
    "m-0,mmlu,algebra,p0,0,1,0\n"
    "m-1,mmlu,algebra,p1,1,1,1\n"
    "m-2,mmlu,biology,p2,1,0,0\n"
    "m-3,mmlu,biology,p3,0,1,1\n";

TEST_F(DatasetTest, ConstantCosts) {
  const std::string path = Write("routellm.csv", kRouteLlmCsv);
  LoadOptions options;
  options.constant_costs = {{"strong", 20.0}, {"weak", 1.0}};
  Result<Dataset> data = LoadDataset(path, options);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->cost_kind, "constant");
  EXPECT_EQ(data->models, (std::vector<std::string>{"weak", "strong"}));
  for (size_t r = 0; r < data->rows(); ++r) {
    EXPECT_DOUBLE_EQ(data->Cost(r, 0), 1.0);
    EXPECT_DOUBLE_EQ(data->Cost(r, 1), 20.0);
  }
  EXPECT_TRUE(data->latency_s.empty());
}

TEST_F(DatasetTest, ConstantCostsOverrideCostColumns) {
  const std::string path = Write("shared.csv", kSharedCsv);
  LoadOptions options;
  options.constant_costs = {{"small", 3.0}, {"big", 2.0}};
  Result<Dataset> data = LoadDataset(path, options);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->cost_kind, "constant");
  EXPECT_EQ(data->models, (std::vector<std::string>{"big", "small"}));
  EXPECT_EQ(data->latency_s.size(), 6u);  // latency is still read
}

TEST_F(DatasetTest, ConstantCostsMustNameEveryModel) {
  const std::string path = Write("routellm.csv", kRouteLlmCsv);
  LoadOptions options;
  options.constant_costs = {{"weak", 1.0}};
  ExpectError(LoadDataset(path, options).status(), StatusCode::kInvalidArgument,
              {path, "strong", "--constant-cost"});
}

TEST_F(DatasetTest, ConstantCostForUnknownModelIsAnError) {
  const std::string path = Write("routellm.csv", kRouteLlmCsv);
  LoadOptions options;
  options.constant_costs = {{"weak", 1.0}, {"strong", 20.0}, {"gpt-5", 50.0}};
  ExpectError(LoadDataset(path, options).status(), StatusCode::kNotFound,
              {path, "gpt-5", "weak, strong"});
}

TEST_F(DatasetTest, NegativeConstantCostIsAnError) {
  const std::string path = Write("routellm.csv", kRouteLlmCsv);
  LoadOptions options;
  options.constant_costs = {{"weak", -1.0}, {"strong", 20.0}};
  ExpectError(LoadDataset(path, options).status(), StatusCode::kOutOfRange, {path, "weak"});
}

TEST_F(DatasetTest, NoCostColumnsAsksForConstantCosts) {
  const std::string path = Write("routellm.csv", kRouteLlmCsv);
  ExpectError(LoadDataset(path, {}).status(), StatusCode::kInvalidArgument,
              {path, "--constant-cost"});
}

TEST_F(DatasetTest, ContaminatedRowsDropped) {
  const std::string path = Write("routellm.csv", kRouteLlmCsv);
  LoadOptions options;
  options.constant_costs = {{"weak", 1.0}, {"strong", 20.0}};
  Result<Dataset> data = LoadDataset(path, options);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->ids, (std::vector<std::string>{"m-0", "m-2"}));

  options.drop_contaminated = false;
  data = LoadDataset(path, options);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->rows(), 4u);
}

TEST_F(DatasetTest, AllRowsContaminatedIsAnError) {
  const std::string path = Write("dirty.csv",
                                 "id,benchmark,prompt,score__a,cost_usd__a,contaminated\n"
                                 "0,t,p,1,1,1\n");
  ExpectError(LoadDataset(path, {}).status(), StatusCode::kInvalidArgument, {path, "contaminated"});
}

TEST_F(DatasetTest, TaskColumn) {
  const std::string path = Write("routellm.csv", kRouteLlmCsv);
  LoadOptions options;
  options.constant_costs = {{"weak", 1.0}, {"strong", 20.0}};
  options.task_column = "subject";
  Result<Dataset> data = LoadDataset(path, options);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->tasks, (std::vector<std::string>{"algebra", "biology"}));

  options.task_column = "topic";
  ExpectError(LoadDataset(path, options).status(), StatusCode::kInvalidArgument, {path, "'topic'"});
}

TEST_F(DatasetTest, TaskFallsBackToFileStem) {
  const std::string path = Write("gsm8k_like.csv",
                                 "id,prompt,score__a,cost_usd__a\n"
                                 "0,p,1,1\n");
  Result<Dataset> data = LoadDataset(path, {});
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->tasks, (std::vector<std::string>{"gsm8k_like"}));
}

TEST_F(DatasetTest, ModelFilter) {
  const std::string path = Write("order.csv",
                                 "id,benchmark,prompt,score__x,cost_usd__x,score__y,cost_usd__y,"
                                 "score__z,cost_usd__z\n"
                                 "0,t,p,0,9,0.25,3,0.5,1\n");
  LoadOptions options;
  options.models = {"x", "z"};
  Result<Dataset> data = LoadDataset(path, options);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->models, (std::vector<std::string>{"z", "x"}));
  EXPECT_DOUBLE_EQ(data->Score(0, 0), 0.5);
  EXPECT_DOUBLE_EQ(data->Cost(0, 1), 9.0);
  ASSERT_EQ(data->score.size(), 2u);
}

TEST_F(DatasetTest, UnknownModelInFilterIsNotFound) {
  const std::string path = Write("shared.csv", kSharedCsv);
  LoadOptions options;
  options.models = {"small", "huge"};
  ExpectError(LoadDataset(path, options).status(), StatusCode::kNotFound,
              {path, "'huge'", "big, small"});
}

// ---- One test per bad input. Each names the file, the line of the record and the column.

TEST_F(DatasetTest, MissingFileIsNotFound) {
  const std::string path = (dir_ / "nope.csv").string();
  ExpectError(LoadDataset(path, {}).status(), StatusCode::kNotFound, {path});
}

TEST_F(DatasetTest, DirectoryIsUnreadable) {
  ExpectError(LoadDataset(dir_.string(), {}).status(), StatusCode::kIoError, {dir_.string()});
}

TEST_F(DatasetTest, EmptyFile) {
  const std::string path = Write("empty.csv", "");
  ExpectError(LoadDataset(path, {}).status(), StatusCode::kInvalidArgument, {path, "empty"});
}

TEST_F(DatasetTest, HeaderWithoutRows) {
  const std::string path = Write("header.csv", "id,benchmark,prompt,score__a,cost_usd__a\n");
  ExpectError(LoadDataset(path, {}).status(), StatusCode::kInvalidArgument, {path, "no rows"});
}

TEST_F(DatasetTest, MissingPromptColumn) {
  const std::string path = Write("noprompt.csv",
                                 "id,benchmark,question,score__a,cost_usd__a\n"
                                 "0,t,p,1,1\n");
  ExpectError(LoadDataset(path, {}).status(), StatusCode::kInvalidArgument,
              {path, "missing column 'prompt'"});
}

TEST_F(DatasetTest, NoScoreColumnsRejectsOneToTenGrades) {
  const std::string path = Write("mt_bench.csv",
                                 "id,benchmark,prompt,score_1to10__a,score_1to10__b\n"
                                 "0,t,p,9,10\n");
  ExpectError(LoadDataset(path, {}).status(), StatusCode::kInvalidArgument,
              {path, "no score__", "score_1to10__a", "[0,1]"});
}

TEST_F(DatasetTest, NonNumericCell) {
  const std::string path = Write("text.csv",
                                 "id,benchmark,prompt,score__a,cost_usd__a\n"
                                 "0,t,p,1,1\n"
                                 "1,t,\"two\nlines\",1,cheap\n");
  ExpectError(LoadDataset(path, {}).status(), StatusCode::kInvalidArgument,
              {path + ":3:", "column 'cost_usd__a'", "'cheap'"});
}

TEST_F(DatasetTest, TrailingGarbageInCell) {
  const std::string path = Write("garbage.csv",
                                 "id,benchmark,prompt,score__a,cost_usd__a\n"
                                 "0,t,p,0.5x,1\n");
  ExpectError(LoadDataset(path, {}).status(), StatusCode::kInvalidArgument,
              {path + ":2:", "column 'score__a'", "'0.5x'"});
}

TEST_F(DatasetTest, EmptyScoreCell) {
  const std::string path = Write("hole.csv",
                                 "id,benchmark,prompt,score__a,cost_usd__a\n"
                                 "0,t,p,1,1\n"
                                 "1,t,p,1,1\n"
                                 "2,t,p,,1\n");
  ExpectError(LoadDataset(path, {}).status(), StatusCode::kInvalidArgument,
              {path + ":4:", "column 'score__a'", "empty"});
}

TEST_F(DatasetTest, NanCostCell) {
  const std::string path = Write("nan.csv",
                                 "id,benchmark,prompt,score__a,energy_j__a\n"
                                 "0,t,p,1,nan\n");
  ExpectError(LoadDataset(path, {}).status(), StatusCode::kInvalidArgument,
              {path + ":2:", "column 'energy_j__a'", "finite"});
}

TEST_F(DatasetTest, InfiniteCostCell) {
  const std::string path = Write("inf.csv",
                                 "id,benchmark,prompt,score__a,energy_j__a\n"
                                 "0,t,p,1,1e999\n");
  ExpectError(LoadDataset(path, {}).status(), StatusCode::kInvalidArgument,
              {path + ":2:", "column 'energy_j__a'", "finite"});
}

TEST_F(DatasetTest, WrongFieldCount) {
  const std::string path = Write("short.csv",
                                 "id,benchmark,prompt,score__a,cost_usd__a\n"
                                 "0,t,p,1,1\n"
                                 "1,t,p,1\n");
  ExpectError(LoadDataset(path, {}).status(), StatusCode::kInvalidArgument,
              {path + ":3:", "column 'cost_usd__a'", "4 fields", "5"});
  const std::string long_path = Write("long.csv",
                                      "id,benchmark,prompt,score__a,cost_usd__a\n"
                                      "0,t,p,1,1,extra\n");
  ExpectError(LoadDataset(long_path, {}).status(), StatusCode::kInvalidArgument,
              {long_path + ":2:", "6 fields"});
}

TEST_F(DatasetTest, ScoreOutOfRange) {
  const std::string path = Write("range.csv",
                                 "id,benchmark,prompt,score__a,cost_usd__a\n"
                                 "0,t,p,7,1\n");
  ExpectError(LoadDataset(path, {}).status(), StatusCode::kOutOfRange,
              {path + ":2:", "column 'score__a'", "[0,1]"});
}

TEST_F(DatasetTest, NegativeCost) {
  const std::string path = Write("neg.csv",
                                 "id,benchmark,prompt,score__a,cost_usd__a\n"
                                 "0,t,p,1,1\n"
                                 "1,t,p,1,-0.5\n");
  ExpectError(LoadDataset(path, {}).status(), StatusCode::kOutOfRange,
              {path + ":3:", "column 'cost_usd__a'", "negative"});
}

TEST_F(DatasetTest, MalformedCsvNamesLineAndColumn) {
  const std::string path = Write("broken.csv",
                                 "id,benchmark,prompt,score__a,cost_usd__a\n"
                                 "0,t,p,1,1\n"
                                 "1,t,\"unterminated,1,1\n");
  ExpectError(LoadDataset(path, {}).status(), StatusCode::kInvalidArgument,
              {path + ":3:", "column 'prompt'", "unterminated"});
}

TEST_F(DatasetTest, DuplicateColumnIsAnError) {
  const std::string path = Write("dup.csv",
                                 "id,benchmark,prompt,score__a,score__a,cost_usd__a\n"
                                 "0,t,p,1,1,1\n");
  ExpectError(LoadDataset(path, {}).status(), StatusCode::kInvalidArgument,
              {path + ":1:", "score__a", "duplicate"});
}

// ---- Writing.

TEST_F(DatasetTest, WriteThenLoadRoundTrips) {
  Dataset data;
  data.models = {"cheap, model", "dear \"one\""};
  data.cost_kind = "energy_j";
  data.ids = {"a,1", "b\"2", "c"};
  data.prompts = {"multi\nline, \"quoted\"", "", "crlf\r\ninside"};
  data.tasks = {"t1", "t,2", "t\n3"};
  data.score = {0.1 + 0.2, 1.0, 0.0, 1.0 / 3.0, 0.5, 0.999999999999};
  data.cost = {1.0 / 7.0, 1e-300, 2.5, 1234567.891, 3.0, 1e17};
  data.latency_s = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6};
  const std::string path = (dir_ / "out.csv").string();
  ASSERT_TRUE(WriteDatasetCsv(data, path).ok());

  Result<Dataset> back = LoadDataset(path, {});
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->models, data.models);
  EXPECT_EQ(back->cost_kind, data.cost_kind);
  EXPECT_EQ(back->ids, data.ids);
  EXPECT_EQ(back->prompts, data.prompts);
  EXPECT_EQ(back->tasks, data.tasks);
  EXPECT_EQ(back->score, data.score);  // bit-exact
  EXPECT_EQ(back->cost, data.cost);
  EXPECT_EQ(back->latency_s, data.latency_s);
}

TEST_F(DatasetTest, WriteConstantCostsAsUsdAndLatencyCostOnce) {
  Dataset data;
  data.models = {"a", "b"};
  data.cost_kind = "constant";
  data.ids = {"0"};
  data.prompts = {"p"};
  data.tasks = {"t"};
  data.score = {1, 0};
  data.cost = {1, 20};
  const std::string path = (dir_ / "const.csv").string();
  ASSERT_TRUE(WriteDatasetCsv(data, path).ok());
  Result<Dataset> back = LoadDataset(path, {});
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->cost_kind, "cost_usd");
  EXPECT_EQ(back->cost, data.cost);

  data.cost_kind = "latency_s";
  data.latency_s = data.cost;
  ASSERT_TRUE(WriteDatasetCsv(data, path).ok());
  back = LoadDataset(path, {});
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->cost_kind, "latency_s");
  EXPECT_EQ(back->latency_s, data.latency_s);
}

TEST_F(DatasetTest, WriteRejectsInconsistentDataset) {
  Dataset data;
  data.models = {"a"};
  data.cost_kind = "energy_j";
  data.ids = {"0"};
  data.prompts = {"p"};
  data.tasks = {"t"};
  data.score = {1};
  const std::string path = (dir_ / "bad.csv").string();
  ExpectError(WriteDatasetCsv(data, path), StatusCode::kInvalidArgument, {path});
  data.cost = {1};
  data.cost_kind = "joules";
  ExpectError(WriteDatasetCsv(data, path), StatusCode::kInvalidArgument, {"joules"});
}

// ---- Pooling.

TEST_F(DatasetTest, LoadDatasetsPoolsFilesInOrder) {
  const std::string a = Write("a.csv",
                              "id,benchmark,prompt,score__x,cost_usd__x,score__y,cost_usd__y\n"
                              "a0,ta,p,1,10,0,1\n"
                              "a1,ta,p,1,10,0,1\n");
  // Other column order, and y is dearer here: pooled means are x 7, y 4.
  const std::string b = Write("b.csv",
                              "id,benchmark,prompt,score__y,cost_usd__y,score__x,cost_usd__x\n"
                              "b0,tb,p,0.5,10,0,1\n");
  Result<Dataset> data = LoadDatasets({a, b}, {});
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->models, (std::vector<std::string>{"y", "x"}));
  EXPECT_EQ(data->ids, (std::vector<std::string>{"a0", "a1", "b0"}));
  EXPECT_EQ(data->tasks, (std::vector<std::string>{"ta", "ta", "tb"}));
  EXPECT_DOUBLE_EQ(data->Score(2, 0), 0.5);
  EXPECT_DOUBLE_EQ(data->Cost(2, 1), 1.0);
  EXPECT_DOUBLE_EQ(data->Cost(0, 1), 10.0);
  EXPECT_DOUBLE_EQ(data->MeanCost(0), 4.0);
}

TEST_F(DatasetTest, LoadDatasetsRejectsDifferentModels) {
  const std::string a = Write("a.csv",
                              "id,benchmark,prompt,score__x,cost_usd__x,score__y,cost_usd__y\n"
                              "a0,ta,p,1,10,0,1\n");
  const std::string b = Write("b.csv",
                              "id,benchmark,prompt,score__x,cost_usd__x,score__z,cost_usd__z\n"
                              "b0,tb,p,1,10,0,1\n");
  const std::string c = Write("c.csv",
                              "id,benchmark,prompt,score__x,energy_j__x,score__y,energy_j__y\n"
                              "c0,tc,p,1,10,0,1\n");
  ExpectError(LoadDatasets({a, b}, {}).status(), StatusCode::kInvalidArgument, {b, a, "z"});
  ExpectError(LoadDatasets({a, c}, {}).status(), StatusCode::kInvalidArgument,
              {c, "energy_j", "cost_usd"});
  ExpectError(LoadDatasets({}, {}).status(), StatusCode::kInvalidArgument, {});
}

// ---- The real data of ../shared/data.

// The data folder, or "" when it is not there.
std::string SharedDataDir() {
  if (const char* env = std::getenv("MESSPLUS_DATA_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
#ifdef MESSPLUS_SOURCE_DIR
  return std::string(MESSPLUS_SOURCE_DIR) + "/../shared/data";
#else
  return "";
#endif
}

bool OnCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string_view(ci) == "true";
}

#define MESSPLUS_REQUIRE_SHARED_DATA(dir)                                                  \
  do {                                                                                     \
    if ((dir).empty() || !fs::is_directory(dir)) {                                         \
      if (OnCi()) {                                                                        \
        GTEST_FAIL() << "shared data folder '" << (dir)                                    \
                     << "' not found; set MESSPLUS_DATA_DIR to the ../shared/data folder"; \
      }                                                                                    \
      GTEST_SKIP() << "shared data folder '" << (dir)                                      \
                   << "' not found (set MESSPLUS_DATA_DIR to run this test)";              \
    }                                                                                      \
  } while (false)

// Counts the records whose `contaminated` column is "1", independently of the loader.
size_t CountContaminated(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CsvReader reader(std::move(content));
  std::vector<std::string_view> fields;
  EXPECT_TRUE(reader.Next(&fields));
  const auto it = std::find(fields.begin(), fields.end(), "contaminated");
  if (it == fields.end()) {
    ADD_FAILURE() << path << ": no contaminated column";
    return 0;
  }
  const size_t column = static_cast<size_t>(it - fields.begin());
  size_t count = 0;
  while (reader.Next(&fields)) count += fields.at(column) == "1" ? 1 : 0;
  EXPECT_TRUE(reader.status().ok()) << reader.status().ToString();
  return count;
}

TEST(SharedData, LoadsRealFiles) {
  const std::string dir = SharedDataDir();
  MESSPLUS_REQUIRE_SHARED_DATA(dir);

  const std::string arc = dir + "/messplus_llama3/messplus_llama3_arc_challenge.csv";
  Result<Dataset> llama = LoadDataset(arc, {});
  ASSERT_TRUE(llama.ok()) << llama.status().ToString();
  EXPECT_EQ(llama->rows(), 1172u);
  EXPECT_EQ(llama->cost_kind, "energy_j");
  EXPECT_EQ(llama->models,
            (std::vector<std::string>{"llama-3.2-1b-instruct", "llama-3.1-8b-instruct-bnb4bit",
                                      "llama-3.3-70b-instruct-bnb4bit"}));
  EXPECT_NEAR(llama->MeanScore(0), 0.3788, 5e-5);
  EXPECT_NEAR(llama->MeanScore(1), 0.5444, 5e-5);
  EXPECT_NEAR(llama->MeanScore(2), 0.6084, 5e-5);
  EXPECT_EQ(llama->latency_s.size(), 1172u * 3u);
  EXPECT_EQ(llama->tasks.front(), "arc_challenge");

  const std::string mmlu = dir + "/routellm/routellm_mmlu_part3.csv";
  const std::string mixtral = "mistralai/Mixtral-8x7B-Instruct-v0.1";
  const std::string gpt4 = "gpt-4-1106-preview";
  LoadOptions options;
  options.constant_costs = {{gpt4, 20.0}, {mixtral, 1.0}};
  options.task_column = "subject";
  Result<Dataset> clean = LoadDataset(mmlu, options);
  ASSERT_TRUE(clean.ok()) << clean.status().ToString();
  options.drop_contaminated = false;
  Result<Dataset> all = LoadDataset(mmlu, options);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  // Part 3 happens to hold no contaminated prompt (part 1 has 5, GSM8K 12: checked below).
  EXPECT_EQ(all->rows(), 883u);
  EXPECT_EQ(all->rows() - clean->rows(), CountContaminated(mmlu));
  EXPECT_EQ(clean->models, (std::vector<std::string>{mixtral, gpt4}));
  EXPECT_EQ(clean->cost_kind, "constant");
  EXPECT_DOUBLE_EQ(clean->MeanCost(1), 20.0);
  EXPECT_EQ(all->tasks.front(), "security_studies");
  EXPECT_EQ(all->tasks.back(), "world_religions");

  const std::string gsm8k = dir + "/routellm/routellm_gsm8k.csv";
  options.task_column.clear();
  options.drop_contaminated = true;
  Result<Dataset> gsm_clean = LoadDataset(gsm8k, options);
  ASSERT_TRUE(gsm_clean.ok()) << gsm_clean.status().ToString();
  options.drop_contaminated = false;
  Result<Dataset> gsm_all = LoadDataset(gsm8k, options);
  ASSERT_TRUE(gsm_all.ok()) << gsm_all.status().ToString();
  const size_t contaminated = CountContaminated(gsm8k);
  EXPECT_GT(contaminated, 0u);
  EXPECT_EQ(gsm_all->rows() - gsm_clean->rows(), contaminated);
  EXPECT_EQ(gsm_all->rows(), 1319u);
  EXPECT_EQ(gsm_clean->tasks.front(), "gsm8k");

  // MT-Bench grades 1-10: rejected with a message that says why.
  const std::string mt = dir + "/routellm/routellm_mt_bench.csv";
  ExpectError(LoadDataset(mt, options).status(), StatusCode::kInvalidArgument, {mt, "no score__"});
}

TEST(SharedData, PoolsTheLlamaFiles) {
  const std::string dir = SharedDataDir();
  MESSPLUS_REQUIRE_SHARED_DATA(dir);
  std::vector<std::string> paths;
  for (const char* name : {"arc_challenge", "arc_easy", "boolq", "logiqa", "piqa", "sciq",
                           "social_iqa", "winogrande"}) {
    paths.push_back(dir + "/messplus_llama3/messplus_llama3_" + name + ".csv");
  }
  Result<Dataset> data = LoadDatasets(paths, {});
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->rows(), 13152u);  // the row counts of the README, summed
  EXPECT_EQ(data->models.front(), "llama-3.2-1b-instruct");
  EXPECT_EQ(data->models.back(), "llama-3.3-70b-instruct-bnb4bit");
  EXPECT_EQ(data->tasks.front(), "arc_challenge");
  EXPECT_EQ(data->tasks.back(), "winogrande");
  EXPECT_EQ(data->latency_s.size(), data->score.size());
}

}  // namespace
}  // namespace messplus::simulator
