#include "stages/feedback/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <msgpack.hpp>

namespace messplus::stages::feedback {
namespace {

constexpr std::string_view kFormat = "messplus.collector_checkpoint";
constexpr int kVersion = 1;

Status WriteAll(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IoError("write " + path + ": " + std::strerror(errno));
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status SyncDirectory(const std::filesystem::path& dir) {
  const int fd = open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return Status::IoError("open directory " + dir.string() + ": " + std::strerror(errno));
  const int rc = fsync(fd);
  close(fd);
  if (rc != 0) return Status::IoError("fsync " + dir.string() + ": " + std::strerror(errno));
  return Status::Ok();
}

}  // namespace

Status WriteCheckpoint(const std::string& path, const Checkpoint& c) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  pk.pack_map(6);
  pk.pack("format");
  pk.pack(kFormat);
  pk.pack("version");
  pk.pack(kVersion);
  pk.pack("epoch");
  pk.pack(c.epoch);
  pk.pack("seq");
  pk.pack(c.seq);
  pk.pack("router_state");
  pk.pack_bin(static_cast<uint32_t>(c.router_state.size()));
  pk.pack_bin_body(c.router_state.data(), static_cast<uint32_t>(c.router_state.size()));
  pk.pack("outcomes");
  pk.pack_array(static_cast<uint32_t>(c.outcomes.size()));
  pipeline::Encoder encoder;
  for (const CheckpointOutcome& o : c.outcomes) {
    const std::string_view frame = encoder.Encode(o.outcome);
    pk.pack_array(3);
    pk.pack_bin(static_cast<uint32_t>(frame.size()));
    pk.pack_bin_body(frame.data(), static_cast<uint32_t>(frame.size()));
    pk.pack(o.age_ms);
    pk.pack(o.joined);
  }

  const std::filesystem::path target(path);
  const std::string tmp = path + ".tmp";
  std::error_code ec;
  if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path(), ec);
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IoError("open " + tmp + ": " + std::strerror(errno));
  Status st = WriteAll(fd, buffer.data(), buffer.size(), tmp);
  if (st.ok() && fsync(fd) != 0) st = Status::IoError("fsync " + tmp + ": " + std::strerror(errno));
  close(fd);
  if (st.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
    st = Status::IoError("rename " + tmp + " to " + path + ": " + std::strerror(errno));
  }
  if (!st.ok()) {
    std::filesystem::remove(tmp, ec);
    return st;
  }
  return SyncDirectory(target.parent_path());
}

Result<std::optional<Checkpoint>> ReadCheckpoint(const std::string& path,
                                                 const pipeline::Limits& limits) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::optional<Checkpoint>();
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot open checkpoint " + path);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  const std::string data = bytes.str();

  Checkpoint c;
  try {
    size_t offset = 0;
    msgpack::object_handle handle = msgpack::unpack(data.data(), data.size(), offset);
    if (offset != data.size()) return Status::DataLoss(path + ": trailing bytes");
    const msgpack::object& root = handle.get();
    if (root.type != msgpack::type::MAP) return Status::DataLoss(path + ": not a checkpoint");
    std::string format;
    int version = 0;
    bool has_state = false, has_outcomes = false;
    pipeline::Decoder decoder(limits);
    pipeline::Message message;
    for (uint32_t i = 0; i < root.via.map.size; ++i) {
      const msgpack::object_kv& kv = root.via.map.ptr[i];
      const std::string key = kv.key.as<std::string>();
      if (key == "format") {
        format = kv.val.as<std::string>();
      } else if (key == "version") {
        version = kv.val.as<int>();
      } else if (key == "epoch") {
        c.epoch = kv.val.as<uint64_t>();
      } else if (key == "seq") {
        c.seq = kv.val.as<uint64_t>();
      } else if (key == "router_state") {
        if (kv.val.type != msgpack::type::BIN) return Status::DataLoss(path + ": router_state");
        c.router_state.assign(kv.val.via.bin.ptr, kv.val.via.bin.size);
        has_state = true;
      } else if (key == "outcomes") {
        if (kv.val.type != msgpack::type::ARRAY) return Status::DataLoss(path + ": outcomes");
        for (uint32_t k = 0; k < kv.val.via.array.size; ++k) {
          const msgpack::object& row = kv.val.via.array.ptr[k];
          if (row.type != msgpack::type::ARRAY || row.via.array.size != 3 ||
              row.via.array.ptr[0].type != msgpack::type::BIN) {
            return Status::DataLoss(path + ": bad outcome entry");
          }
          const msgpack::object& frame = row.via.array.ptr[0];
          Status st = decoder.Decode(std::string_view(frame.via.bin.ptr, frame.via.bin.size),
                                     &message, pipeline::TypeBit(pipeline::MsgType::kOutcome));
          if (!st.ok())
            return Status::DataLoss(path + ": outcome " + std::to_string(k) + ": " + st.message());
          CheckpointOutcome o;
          o.outcome = std::move(std::get<pipeline::Outcome>(message));
          o.age_ms = row.via.array.ptr[1].as<uint64_t>();
          o.joined = row.via.array.ptr[2].as<bool>();
          c.outcomes.push_back(std::move(o));
        }
        has_outcomes = true;
      }
    }
    if (format != kFormat || version != kVersion || !has_state || !has_outcomes) {
      return Status::DataLoss(path + ": not a messplus collector checkpoint of version " +
                              std::to_string(kVersion));
    }
  } catch (const std::exception& e) {
    return Status::DataLoss(path + ": corrupt checkpoint: " + e.what());
  }
  return std::optional<Checkpoint>(std::move(c));
}

}  // namespace messplus::stages::feedback
