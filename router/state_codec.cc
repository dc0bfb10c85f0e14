#include "router/state_codec.h"

namespace messplus::router {

Result<StateMap> StateMap::Of(const msgpack::object& object, std::string_view what) {
  if (object.type != msgpack::type::MAP) {
    return Status::DataLoss(std::string(what) + ": expected a map");
  }
  return StateMap(&object, std::string(what));
}

const msgpack::object* StateMap::Find(std::string_view key) const {
  const auto& map = object_->via.map;
  for (uint32_t i = 0; i < map.size; ++i) {
    const msgpack::object& k = map.ptr[i].key;
    if (k.type == msgpack::type::STR && std::string_view(k.via.str.ptr, k.via.str.size) == key) {
      return &map.ptr[i].val;
    }
  }
  return nullptr;
}

}  // namespace messplus::router
