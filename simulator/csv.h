// A small RFC-4180 CSV reader and the matching field writer.
//
// The reader owns the whole file content and hands out records as string_views into it.
// Quoted fields may hold commas, doubled quotes and line breaks; the doubled quotes are
// undone in place (the unquoted text is never longer than the quoted one), so reading needs
// no allocation per field. Records end with "\n", "\r\n" or a lone "\r"; a UTF-8 byte order
// mark at the start is skipped; blank lines between records are skipped (so a record of one
// empty field must be written as `""`). A line break inside a quoted field is kept as it is.
//
// Typical use:
//   CsvReader reader(std::move(content));
//   std::vector<std::string_view> fields;
//   while (reader.Next(&fields)) { ... reader.record_line() ... }
//   if (!reader.status().ok()) return reader.status();
//
// Thread safety: none; a CsvReader is used by one thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "router/status.h"

namespace messplus::simulator {

// Where and why the input is malformed.
struct CsvError {
  size_t line = 0;   // 1-based physical line of the problem
  size_t field = 0;  // 0-based index of the field in its record
  std::string reason;
};

class CsvReader {
 public:
  explicit CsvReader(std::string content);

  // Views handed out point into the reader's buffer.
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  // Reads the next record into *fields (cleared first). Returns false at the end of the input
  // or on malformed input (then status() is not OK). The views stay valid for the lifetime of
  // the reader.
  bool Next(std::vector<std::string_view>* fields);

  // 1-based line on which the last record returned by Next starts.
  size_t record_line() const { return record_line_; }

  // OK, or InvalidArgument "line L, field F: <reason>" after malformed input.
  const Status& status() const { return status_; }
  // Details of the malformed input; meaningful only when status() is not OK.
  const CsvError& error() const { return error_; }

 private:
  bool Fail(size_t line, size_t field, std::string reason);
  // Consumes one line end ("\n", "\r\n" or "\r") at pos_. REQUIRES: buf_[pos_] is '\n' or '\r'.
  void ConsumeLineEnd();

  std::string buf_;
  size_t pos_ = 0;
  size_t line_ = 1;  // line of buf_[pos_]
  size_t record_line_ = 0;
  Status status_;
  CsvError error_;
};

// Appends `field` to *out, quoted when it holds a comma, a quote, CR or LF (quotes doubled),
// so that CsvReader reads it back unchanged. `force_quotes` quotes it anyway: an empty field
// alone in its record must be written as `""`, since a blank line is skipped.
void AppendCsvField(std::string_view field, std::string* out, bool force_quotes = false);

}  // namespace messplus::simulator
