// Status and Result<T>: the value-or-error types used across messplus.
//
// A Status is either OK or carries a code and a message. OK is cheap (no allocation), so a
// function can return Status on its hot path. Result<T> holds either a T or a non-OK Status
// (the semantics of absl::StatusOr). Bad input from outside the process is always reported
// with these types, never by throwing out of a stage's loop.
//
// Thread safety: a Status or Result is a value; distinct objects may be used from distinct
// threads without synchronisation.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace messplus {

// Error categories. The names double as the `reason` label of the stages' reject counters,
// so they are part of the metrics interface: do not rename existing entries.
enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,  // malformed or out-of-range input
  kNotFound = 2,         // unknown model, tenant, request id, file
  kOutOfRange = 3,       // oversized input, value outside its allowed range
  kFailedPrecondition = 4,
  kUnavailable = 5,  // a peer did not answer in time
  kInternal = 6,
  kIoError = 7,
  kDataLoss = 8,  // corrupt state or checkpoint
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message);

  Status(const Status& other) : rep_(other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr) {}
  Status& operator=(const Status& other) {
    if (this != &other) rep_ = other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr;
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) {
    return Status(StatusCode::kInvalidArgument, std::move(msg));
  }
  static Status NotFound(std::string msg) { return Status(StatusCode::kNotFound, std::move(msg)); }
  static Status OutOfRange(std::string msg) {
    return Status(StatusCode::kOutOfRange, std::move(msg));
  }
  static Status FailedPrecondition(std::string msg) {
    return Status(StatusCode::kFailedPrecondition, std::move(msg));
  }
  static Status Unavailable(std::string msg) {
    return Status(StatusCode::kUnavailable, std::move(msg));
  }
  static Status Internal(std::string msg) { return Status(StatusCode::kInternal, std::move(msg)); }
  static Status IoError(std::string msg) { return Status(StatusCode::kIoError, std::move(msg)); }
  static Status DataLoss(std::string msg) { return Status(StatusCode::kDataLoss, std::move(msg)); }

  bool ok() const { return rep_ == nullptr; }
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
  // Empty for OK.
  const std::string& message() const;
  // "OK" or "<code name>: <message>".
  std::string ToString() const;

 private:
  struct Rep {
    StatusCode code;
    std::string message;
  };
  std::unique_ptr<Rep> rep_;  // null means OK
};

// Holds a T or a non-OK Status. REQUIRES: the Status given to the constructor is not OK.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design, like StatusOr
  Result(Status status) : v_(std::move(status)) {
    if (std::get<Status>(v_).ok()) {
      v_ = Status::Internal("Result constructed from an OK Status without a value");
    }
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;  // immutable, shared
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  // REQUIRES: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace messplus

// Returns early from the enclosing function with the Status of `expr` when it is not OK.
#define MESSPLUS_RETURN_IF_ERROR(expr)           \
  do {                                           \
    ::messplus::Status _messplus_st = (expr);    \
    if (!_messplus_st.ok()) return _messplus_st; \
  } while (false)
