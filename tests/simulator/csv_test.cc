#include "simulator/csv.h"

#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace messplus::simulator {
namespace {

using Records = std::vector<std::vector<std::string>>;

// Reads every record; the line on which each starts goes to *lines when given.
Records ReadAll(std::string content, std::vector<size_t>* lines = nullptr,
                Status* status = nullptr) {
  CsvReader reader(std::move(content));
  Records out;
  std::vector<std::string_view> fields;
  while (reader.Next(&fields)) {
    out.emplace_back(fields.begin(), fields.end());
    if (lines != nullptr) lines->push_back(reader.record_line());
  }
  if (status != nullptr) *status = reader.status();
  EXPECT_TRUE(status != nullptr || reader.status().ok()) << reader.status().ToString();
  return out;
}

TEST(CsvReader, ReadsPlainRecords) {
  EXPECT_EQ(ReadAll("a,b,c\n1,2,3\n"), (Records{{"a", "b", "c"}, {"1", "2", "3"}}));
}

TEST(CsvReader, EmptyInputHasNoRecords) {
  Status status;
  EXPECT_TRUE(ReadAll("", nullptr, &status).empty());
  EXPECT_TRUE(status.ok());
}

TEST(CsvReader, LastRecordNeedsNoLineEnd) {
  EXPECT_EQ(ReadAll("a,b\n1,2"), (Records{{"a", "b"}, {"1", "2"}}));
}

TEST(CsvReader, EmptyFieldsAndTrailingComma) {
  EXPECT_EQ(ReadAll(",a,,\n,\n"), (Records{{"", "a", "", ""}, {"", ""}}));
  EXPECT_EQ(ReadAll("a,"), (Records{{"a", ""}}));
}

TEST(CsvReader, QuotedFieldsKeepCommasQuotesAndNewlines) {
  const std::string csv =
      "id,prompt,x\n"
      "1,\"Hello, world\",2\n"
      "2,\"She said \"\"hi\"\"\",3\n"
      "3,\"line one\nline two\n\",4\n"
      "4,\"\",5\n"
      "5,\"\"\"\",6\n";
  EXPECT_EQ(ReadAll(csv), (Records{{"id", "prompt", "x"},
                                   {"1", "Hello, world", "2"},
                                   {"2", "She said \"hi\"", "3"},
                                   {"3", "line one\nline two\n", "4"},
                                   {"4", "", "5"},
                                   {"5", "\"", "6"}}));
}

TEST(CsvReader, RecordLineCountsLineBreaksInsideQuotes) {
  std::vector<size_t> lines;
  ReadAll("h1,h2\n\"a\nb\nc\",1\nx,2\n\"\r\n\",3\ny,4\n", &lines);
  EXPECT_EQ(lines, (std::vector<size_t>{1, 2, 5, 6, 8}));
}

TEST(CsvReader, CrLfLineEnds) {
  std::vector<size_t> lines;
  const Records records = ReadAll("a,b\r\n1,\"x\r\ny\"\r\n2,3\r\n", &lines);
  // A line break inside a quoted field is kept as written.
  EXPECT_EQ(records, (Records{{"a", "b"}, {"1", "x\r\ny"}, {"2", "3"}}));
  EXPECT_EQ(lines, (std::vector<size_t>{1, 2, 4}));
}

TEST(CsvReader, LoneCrEndsARecord) {
  EXPECT_EQ(ReadAll("a,b\r1,2\r"), (Records{{"a", "b"}, {"1", "2"}}));
}

TEST(CsvReader, SkipsUtf8ByteOrderMark) {
  EXPECT_EQ(ReadAll("\xEF\xBB\xBFid,x\n1,2\n"), (Records{{"id", "x"}, {"1", "2"}}));
  // Only at the start: elsewhere the bytes are data.
  EXPECT_EQ(ReadAll("a\n\xEF\xBB\xBF"
                    "b\n"),
            (Records{{"a"},
                     {"\xEF\xBB\xBF"
                      "b"}}));
}

TEST(CsvReader, SkipsBlankLines) {
  std::vector<size_t> lines;
  EXPECT_EQ(ReadAll("\na,b\n\n\r\n1,2\n\n", &lines), (Records{{"a", "b"}, {"1", "2"}}));
  EXPECT_EQ(lines, (std::vector<size_t>{2, 5}));
}

TEST(CsvReader, FieldsStayValidAcrossRecords) {
  CsvReader reader("\"a\"\"b\",c\nd,e\n");
  std::vector<std::string_view> first;
  std::vector<std::string_view> second;
  ASSERT_TRUE(reader.Next(&first));
  ASSERT_TRUE(reader.Next(&second));
  EXPECT_FALSE(reader.Next(&second));
  EXPECT_EQ(first[0], "a\"b");
  EXPECT_EQ(first[1], "c");
  EXPECT_EQ(second[0], "d");
}

TEST(CsvReader, UnterminatedQuoteNamesTheLineItOpensOn) {
  Status status;
  std::vector<size_t> lines;
  const Records records = ReadAll("a,b\n1,2\n3,\"open\nmore\n", &lines, &status);
  EXPECT_EQ(records.size(), 2u);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("line 3"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("field 2"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("unterminated"), std::string::npos) << status.message();
}

TEST(CsvReader, QuoteInsideUnquotedFieldIsAnError) {
  CsvReader reader("a,b\n1,ab\"c\n");
  std::vector<std::string_view> fields;
  ASSERT_TRUE(reader.Next(&fields));
  EXPECT_FALSE(reader.Next(&fields));
  EXPECT_EQ(reader.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(reader.error().line, 2u);
  EXPECT_EQ(reader.error().field, 1u);
  EXPECT_NE(reader.status().message().find("line 2"), std::string::npos);
  // A reader that failed stays failed.
  EXPECT_FALSE(reader.Next(&fields));
  EXPECT_FALSE(reader.status().ok());
}

TEST(CsvReader, CharacterAfterClosingQuoteIsAnError) {
  CsvReader reader("a,b\n\"x\ny\"z,1\n");
  std::vector<std::string_view> fields;
  ASSERT_TRUE(reader.Next(&fields));
  EXPECT_FALSE(reader.Next(&fields));
  EXPECT_EQ(reader.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(reader.error().line, 3u);  // the stray 'z' is on line 3
  EXPECT_EQ(reader.error().field, 0u);
  EXPECT_NE(reader.status().message().find("'z'"), std::string::npos);
}

TEST(AppendCsvField, QuotesOnlyWhenNeededAndReadsBack) {
  const std::vector<std::string> fields = {"plain",  "",     "a,b", "say \"x\"",
                                           "l1\nl2", "cr\r", "\"",  "tab\tok"};
  std::string line;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) line += ',';
    AppendCsvField(fields[i], &line);
  }
  EXPECT_EQ(line, "plain,,\"a,b\",\"say \"\"x\"\"\",\"l1\nl2\",\"cr\r\",\"\"\"\",tab\tok");
  EXPECT_EQ(ReadAll(line + "\n"), (Records{fields}));

  std::string forced;
  AppendCsvField("", &forced, /*force_quotes=*/true);
  EXPECT_EQ(forced, "\"\"");
  EXPECT_EQ(ReadAll(forced + "\n"), (Records{{""}}));
}

}  // namespace
}  // namespace messplus::simulator
