// ExpiringMap: a bounded map whose entries carry a deadline, for the tables of in-flight
// work (requests awaiting replies, feedback awaiting acks, outcomes awaiting feedback).
//
// Every table of a stage gives its entries the same lifetime, so deadlines arrive in
// insertion order and a FIFO of (deadline, key) finds the expired ones without scanning.
// Erased or replaced entries leave a stale FIFO record that is skipped (by generation) when
// it reaches the front; records are at most one per insertion.
//
// Thread safety: none (a value type of one stage).
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <utility>

#include "pipeline/clock.h"

namespace messplus::pipeline {

template <typename K, typename V>
class ExpiringMap {
 public:
  size_t size() const { return map_.size(); }
  bool empty() const { return map_.empty(); }

  V* Find(const K& key) {
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second.value;
  }
  bool Contains(const K& key) const { return map_.count(key) != 0; }

  // Inserts, or replaces the entry of the same key (which gets the new deadline).
  V& Insert(const K& key, V value, TimePoint deadline) {
    const uint64_t gen = ++generation_;
    Entry& e = map_[key];
    e.value = std::move(value);
    e.deadline = deadline;
    e.generation = gen;
    order_.push_back({deadline, key, gen});
    return e.value;
  }

  bool Erase(const K& key) { return map_.erase(key) != 0; }

  // Removes every entry whose deadline is <= now, oldest first, passing it to fn(key, V&&).
  template <typename Fn>
  size_t Expire(TimePoint now, Fn&& fn) {
    size_t n = 0;
    while (!order_.empty() && order_.front().deadline <= now) {
      Record r = std::move(order_.front());
      order_.pop_front();
      auto it = map_.find(r.key);
      if (it == map_.end() || it->second.generation != r.generation) continue;  // stale
      V value = std::move(it->second.value);
      map_.erase(it);
      fn(r.key, std::move(value));
      ++n;
    }
    return n;
  }

  // Removes the entry that would expire first, passing it to fn; false when empty.
  template <typename Fn>
  bool EvictOldest(Fn&& fn) {
    while (!order_.empty()) {
      Record r = std::move(order_.front());
      order_.pop_front();
      auto it = map_.find(r.key);
      if (it == map_.end() || it->second.generation != r.generation) continue;
      V value = std::move(it->second.value);
      map_.erase(it);
      fn(r.key, std::move(value));
      return true;
    }
    return false;
  }

  // Visits live entries oldest first: fn(key, const V&, deadline).
  template <typename Fn>
  void ForEachOldestFirst(Fn&& fn) const {
    for (const Record& r : order_) {
      auto it = map_.find(r.key);
      if (it == map_.end() || it->second.generation != r.generation) continue;
      fn(r.key, it->second.value, it->second.deadline);
    }
  }

  // Removes everything, passing each entry to fn (shutdown).
  template <typename Fn>
  void Drain(Fn&& fn) {
    while (EvictOldest(fn)) {
    }
    order_.clear();
  }

 private:
  struct Entry {
    V value{};
    TimePoint deadline{};
    uint64_t generation = 0;
  };
  struct Record {
    TimePoint deadline;
    K key;
    uint64_t generation;
  };
  std::unordered_map<K, Entry> map_;
  std::deque<Record> order_;
  uint64_t generation_ = 0;
};

}  // namespace messplus::pipeline
