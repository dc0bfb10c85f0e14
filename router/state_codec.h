// Helpers to read the msgpack maps that hold learning state, with every failure reported as
// a DataLoss Status instead of an exception.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <msgpack.hpp>

#include "router/status.h"

namespace messplus::router {

// A view of a msgpack map; the object must outlive the reader.
class StateMap {
 public:
  static Result<StateMap> Of(const msgpack::object& object, std::string_view what);

  // The value under `key`, or nullptr.
  const msgpack::object* Find(std::string_view key) const;

  // Converts the value under `key` to T; DataLoss when missing or of another type.
  template <typename T>
  Status Get(std::string_view key, T* out) const {
    const msgpack::object* v = Find(key);
    if (v == nullptr) return Status::DataLoss(what_ + ": missing field '" + std::string(key) + "'");
    try {
      v->convert(*out);
    } catch (const std::exception& e) {
      return Status::DataLoss(what_ + ": field '" + std::string(key) + "' has the wrong type");
    }
    return Status::Ok();
  }

  const std::string& what() const { return what_; }

 private:
  StateMap(const msgpack::object* object, std::string what) : object_(object), what_(what) {}
  const msgpack::object* object_;
  std::string what_;
};

}  // namespace messplus::router
