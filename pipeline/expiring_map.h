// ExpiringMap: a bounded map whose entries carry a deadline, for the tables of in-flight
// work (requests awaiting replies, feedback awaiting acks, outcomes awaiting feedback).
//
// Every table of a stage gives its entries the same lifetime, so deadlines arrive in
// insertion order and a FIFO of (deadline, key) finds the expired ones without scanning.
// Erased or replaced entries leave a stale FIFO record that is skipped (by generation) when
// it reaches the front; records are at most one per insertion.
//
// No allocation per entry in the steady state: the FIFO is a ring buffer that keeps its
// records (and their keys' capacity), and erased entries keep their map node (key and value
// capacity included) on a free list, up to kMaxFreeNodes, for the next insertion.
//
// Thread safety: none (a value type of one stage).
#pragma once

#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pipeline/clock.h"

namespace messplus::pipeline {

template <typename K, typename V>
class ExpiringMap {
 public:
  // Erased nodes kept for reuse; beyond this, they are freed.
  static constexpr size_t kMaxFreeNodes = 1024;

  size_t size() const { return map_.size(); }
  bool empty() const { return map_.empty(); }

  V* Find(const K& key) {
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second.value;
  }
  bool Contains(const K& key) const { return map_.count(key) != 0; }

  // Inserts, or replaces the entry of the same key (which gets the new deadline).
  V& Insert(const K& key, V value, TimePoint deadline) {
    V& v = Slot(key, deadline);
    v = std::move(value);
    return v;
  }

  // As Insert, but returns the entry's value to be filled in place: a reused one (the value
  // an erased or replaced entry left, with its capacity) or a default-constructed one. The
  // caller must set every field.
  V& Slot(const K& key, TimePoint deadline) {
    const uint64_t gen = ++generation_;
    auto it = map_.find(key);
    if (it == map_.end()) {
      if (free_.empty()) {
        it = map_.try_emplace(key).first;
      } else {
        node_type node = std::move(free_.back());
        free_.pop_back();
        node.key() = key;
        it = map_.insert(std::move(node)).position;
      }
    }
    Entry& e = it->second;
    e.deadline = deadline;
    e.generation = gen;
    order_.PushBack(deadline, key, gen);
    return e.value;
  }

  bool Erase(const K& key) {
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    Recycle(map_.extract(it));
    return true;
  }

  // Removes every entry whose deadline is <= now, oldest first, passing it to fn(key, V&&).
  template <typename Fn>
  size_t Expire(TimePoint now, Fn&& fn) {
    size_t n = 0;
    while (!order_.empty() && order_.front().deadline <= now) {
      if (PopFront(fn)) ++n;
    }
    return n;
  }

  // Removes the entry that would expire first, passing it to fn; false when empty.
  template <typename Fn>
  bool EvictOldest(Fn&& fn) {
    while (!order_.empty()) {
      if (PopFront(fn)) return true;
    }
    return false;
  }

  // Visits live entries oldest first: fn(key, const V&, deadline).
  template <typename Fn>
  void ForEachOldestFirst(Fn&& fn) const {
    for (size_t i = 0; i < order_.size(); ++i) {
      const Record& r = order_[i];
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
    TimePoint deadline{};
    K key{};
    uint64_t generation = 0;
  };
  using Map = std::unordered_map<K, Entry>;
  using node_type = typename Map::node_type;

  // FIFO of records in a ring buffer: popped records stay constructed, so a string key's
  // capacity serves the next push.
  class Ring {
   public:
    bool empty() const { return size_ == 0; }
    size_t size() const { return size_; }
    const Record& front() const { return slots_[head_]; }
    const Record& operator[](size_t i) const { return slots_[(head_ + i) % slots_.size()]; }
    void PushBack(TimePoint deadline, const K& key, uint64_t generation) {
      if (size_ == slots_.size()) Grow();
      Record& r = slots_[(head_ + size_) % slots_.size()];
      r.deadline = deadline;
      r.key = key;
      r.generation = generation;
      ++size_;
    }
    void PopFront() {
      head_ = (head_ + 1) % slots_.size();
      --size_;
    }
    void clear() {
      head_ = 0;
      size_ = 0;
    }

   private:
    void Grow() {
      std::vector<Record> bigger(slots_.empty() ? 16 : slots_.size() * 2);
      for (size_t i = 0; i < size_; ++i) {
        bigger[i] = std::move(slots_[(head_ + i) % slots_.size()]);
      }
      slots_ = std::move(bigger);
      head_ = 0;
    }

    std::vector<Record> slots_;
    size_t head_ = 0;
    size_t size_ = 0;
  };

  // Pops the front record; when it is live, removes its entry and passes it to fn.
  template <typename Fn>
  bool PopFront(Fn& fn) {
    const Record& r = order_.front();
    auto it = map_.find(r.key);
    const bool live = it != map_.end() && it->second.generation == r.generation;
    order_.PopFront();
    if (!live) return false;  // stale
    // The entry leaves the map before fn runs (fn may insert); the node's key and value
    // stay valid until it is recycled.
    node_type node = map_.extract(it);
    fn(std::as_const(node.key()), std::move(node.mapped().value));
    Recycle(std::move(node));
    return true;
  }

  void Recycle(node_type&& node) {
    if (free_.size() < kMaxFreeNodes) free_.push_back(std::move(node));
  }

  Map map_;
  std::vector<node_type> free_;
  Ring order_;
  uint64_t generation_ = 0;
};

}  // namespace messplus::pipeline
