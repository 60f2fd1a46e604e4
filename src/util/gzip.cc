#include "util/gzip.h"

#include <zlib.h>

#include <memory>

#include "gm/error.h"

namespace gm::util {

std::string gzip(std::string_view data) {
  z_stream z{};
  // windowBits 15 + 16: a gzip header and trailer instead of zlib's.
  if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw Error("gzip", "cannot start compressing", z.msg != nullptr ? z.msg : "");
  }
  std::unique_ptr<z_stream, int (*)(z_stream*)> end(&z, deflateEnd);
  std::string out(deflateBound(&z, static_cast<uLong>(data.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
    throw Error("gzip", "cannot compress", z.msg != nullptr ? z.msg : "");
  }
  out.resize(z.total_out);
  return out;
}

std::string gunzip(std::string_view packed, std::size_t limit) {
  z_stream z{};
  if (inflateInit2(&z, 15 + 16) != Z_OK) {  // gzip only
    throw Error("gunzip", "cannot start decompressing", z.msg != nullptr ? z.msg : "");
  }
  std::unique_ptr<z_stream, int (*)(z_stream*)> end(&z, inflateEnd);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(packed.data()));
  z.avail_in = static_cast<uInt>(packed.size());
  std::string out;
  char buffer[16384];
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(buffer);
    z.avail_out = sizeof buffer;
    int rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      throw Error("gunzip", "not gzip data", z.msg != nullptr ? z.msg : "");
    }
    out.append(buffer, sizeof buffer - z.avail_out);
    if (out.size() > limit) {
      throw Error("gunzip", "more than " + std::to_string(limit) + " bytes");
    }
    if (rc == Z_STREAM_END) {
      return out;
    }
    if (z.avail_in == 0 && z.avail_out != 0) {
      throw Error("gunzip", "the data ends early");
    }
  }
}

}  // namespace gm::util
