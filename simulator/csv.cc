#include "simulator/csv.h"

#include <utility>

namespace messplus::simulator {
namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

bool IsLineEnd(char c) { return c == '\n' || c == '\r'; }

}  // namespace

CsvReader::CsvReader(std::string content) : buf_(std::move(content)) {
  if (std::string_view(buf_).starts_with(kUtf8Bom)) pos_ = kUtf8Bom.size();
}

bool CsvReader::Fail(size_t line, size_t field, std::string reason) {
  status_ = Status::InvalidArgument("line " + std::to_string(line) + ", field " +
                                    std::to_string(field + 1) + ": " + reason);
  error_ = CsvError{line, field, std::move(reason)};
  pos_ = buf_.size();  // a reader that failed stays failed
  return false;
}

void CsvReader::ConsumeLineEnd() {
  if (buf_[pos_] == '\r' && pos_ + 1 < buf_.size() && buf_[pos_ + 1] == '\n') ++pos_;
  ++pos_;
  ++line_;
}

bool CsvReader::Next(std::vector<std::string_view>* fields) {
  fields->clear();
  if (!status_.ok()) return false;
  char* const data = buf_.data();
  const size_t n = buf_.size();
  while (pos_ < n && IsLineEnd(data[pos_])) ConsumeLineEnd();
  if (pos_ >= n) return false;
  record_line_ = line_;

  // One field per iteration; pos_ is at the first character of the field.
  for (;;) {
    const size_t field = fields->size();
    if (pos_ < n && data[pos_] == '"') {
      // Quoted: copy down over the opening quote's successor, undoing doubled quotes. The
      // write position never passes the read position, so the copy is safe in place.
      const size_t open_line = line_;
      const size_t start = pos_ + 1;
      size_t w = start;
      size_t r = start;
      for (;;) {
        if (r >= n) {
          return Fail(open_line, field,
                      "unterminated quoted field (its opening quote is on this line)");
        }
        const char c = data[r];
        if (c == '"') {
          if (r + 1 < n && data[r + 1] == '"') {
            data[w++] = '"';
            r += 2;
            continue;
          }
          ++r;
          break;
        }
        // Count line breaks as ConsumeLineEnd does, so record_line() stays exact.
        if (c == '\n' || (c == '\r' && (r + 1 >= n || data[r + 1] != '\n'))) ++line_;
        data[w++] = c;
        ++r;
      }
      fields->emplace_back(data + start, w - start);
      pos_ = r;
      if (pos_ >= n) return true;
      const char next = data[pos_];
      if (next == ',') {
        ++pos_;
        continue;
      }
      if (IsLineEnd(next)) {
        ConsumeLineEnd();
        return true;
      }
      return Fail(line_, field,
                  std::string("unexpected character '") + next +
                      "' after the closing quote of a quoted field");
    }

    // Unquoted: up to the next comma or line end; a quote inside is malformed.
    const size_t start = pos_;
    while (pos_ < n) {
      const char c = data[pos_];
      if (c == ',' || IsLineEnd(c)) break;
      if (c == '"') {
        return Fail(line_, field,
                    "quote inside an unquoted field (quote the whole field and double the "
                    "quote)");
      }
      ++pos_;
    }
    fields->emplace_back(data + start, pos_ - start);
    if (pos_ >= n) return true;
    if (data[pos_] == ',') {
      ++pos_;
      continue;  // a comma at the end of the line or input starts an empty last field
    }
    ConsumeLineEnd();
    return true;
  }
}

void AppendCsvField(std::string_view field, std::string* out, bool force_quotes) {
  const bool quote =
      force_quotes || field.find_first_of(std::string_view(",\"\r\n", 4)) != field.npos;
  if (!quote) {
    out->append(field);
    return;
  }
  out->push_back('"');
  for (const char c : field) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

}  // namespace messplus::simulator
