// SparseFeatures: a sparse feature vector (index, value pairs) in a hashed space.
//
// Indices are unique within one vector after FeatureHasher produced it; order is unspecified.
// It is a plain value: copyable and movable, no invariants beyond equal-length arrays.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace messplus::router {

struct SparseFeatures {
  std::vector<uint32_t> index;
  std::vector<float> value;

  size_t size() const { return index.size(); }
  bool empty() const { return index.empty(); }
  void clear() {
    index.clear();
    value.clear();
  }
  void push_back(uint32_t i, float v) {
    index.push_back(i);
    value.push_back(v);
  }
};

}  // namespace messplus::router
