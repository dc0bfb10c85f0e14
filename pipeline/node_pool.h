// NodePool: erased nodes of a std::unordered_map kept for the next insertion, so a table of
// in-flight work (one entry per request or call) stops allocating once it is warm: the node,
// and the capacity of the strings and vectors in its key and value, serve the next entry.
//
// A reused value holds whatever the erased entry left: the caller sets every field.
//
// Thread safety: none (a value type of one stage).
#pragma once

#include <cstddef>
#include <unordered_map>
#include <utility>
#include <vector>

namespace messplus::pipeline {

template <typename Map>
class NodePool {
 public:
  using key_type = typename Map::key_type;
  using iterator = typename Map::iterator;
  using node_type = typename Map::node_type;

  explicit NodePool(size_t max_free = 1024) : max_free_(max_free) {}

  // The entry of `key`: the existing one (second: false), or a new one made from a recycled
  // node when there is one, else a default-constructed value (second: true).
  std::pair<iterator, bool> FindOrInsert(Map& map, const key_type& key) {
    auto it = map.find(key);
    if (it != map.end()) return {it, false};
    if (free_.empty()) return {map.try_emplace(key).first, true};
    node_type node = std::move(free_.back());
    free_.pop_back();
    node.key() = key;
    return {map.insert(std::move(node)).position, true};
  }

  // Removes the entry at `it`, keeping its node (up to max_free nodes).
  void Erase(Map& map, iterator it) { Recycle(map.extract(it)); }

  // Takes back a node extracted by the caller.
  void Recycle(node_type&& node) {
    if (free_.size() < max_free_) free_.push_back(std::move(node));
  }

 private:
  size_t max_free_;
  std::vector<node_type> free_;
};

}  // namespace messplus::pipeline
