// `gpumachine scp [-r] SRC DST`: copy over SFTP; one side is NAME:path.
#include "cli/verbs.h"

#include "gm/error.h"
#include "machine/connect.h"
#include "store/store.h"
#include "util/progress.h"
#include "util/shell.h"

#include <cstdlib>
#include <filesystem>

namespace gm::cli {

namespace {

struct ScpOptions {
  bool recursive = false;
  std::string source;
  std::string destination;
};

struct Endpoint {
  std::string machine;  // empty: local
  std::string path;
};

/// "NAME:path" is remote when NAME is a valid machine name (so "./a:b" and "/x:y" stay local).
Endpoint parse_endpoint(const std::string& text) {
  auto colon = text.find(':');
  if (colon != std::string::npos && colon > 0) {
    std::string name = text.substr(0, colon);
    try {
      store::validate_name(name);
      std::string path = text.substr(colon + 1);
      return {name, path.empty() ? "." : path};
    } catch (const UsageError&) {
    }
  }
  return {"", text};
}

/// Bytes in a local file or tree (symlinks not followed); 0 when unknown.
std::uint64_t local_size(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) {
    return std::filesystem::file_size(path, ec);
  }
  std::uint64_t total = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) {
      total += it->file_size(ec);
    }
  }
  return total;
}

/// Bytes in a remote file or tree (GNU du on the machine); 0 when unknown.
std::uint64_t remote_size(ssh::Session& session, const std::string& path) {
  ssh::ExecResult r = session.run("du -sb -- " + util::shell_quote(path) + " 2>/dev/null");
  return r.exit_status == 0 ? std::strtoull(r.out.c_str(), nullptr, 10) : 0;
}

int run_scp(Context& ctx, const ScpOptions& opts) {
  Endpoint src = parse_endpoint(opts.source);
  Endpoint dst = parse_endpoint(opts.destination);
  if (src.machine.empty() == dst.machine.empty()) {
    throw UsageError(
        "scp " + opts.source + " " + opts.destination,
        src.machine.empty() ? "neither side names a machine" : "both sides name a machine",
        "exactly one side is NAME:path, e.g. gpumachine scp data.bin gpu1:/tmp/");
  }
  const std::string& name = src.machine.empty() ? dst.machine : src.machine;
  MachineRecord record = machine::load_for_ssh(ctx.store(), name, "scp");
  std::unique_ptr<ssh::Session> session = machine::connect(record);
  if (dst.machine.empty()) {
    std::filesystem::path local = dst.path;
    if (std::filesystem::is_directory(local)) {
      local /= std::filesystem::path(src.path).filename();
    }
    util::Progress progress("downloading " + opts.source, remote_size(*session, src.path));
    session->on_transfer([&progress](std::uint64_t bytes) { progress.add(bytes); });
    session->download_path(src.path, local, opts.recursive);
    progress.finish();
  } else {
    std::filesystem::path local = src.path;
    if (std::filesystem::is_directory(local) && !opts.recursive) {
      throw UsageError(opts.source, "is a directory", "use -r to copy directories");
    }
    util::Progress progress("uploading " + opts.source, local_size(local));
    session->on_transfer([&progress](std::uint64_t bytes) { progress.add(bytes); });
    session->upload_path(local, dst.path, opts.recursive);
    progress.finish();
  }
  if (ctx.json()) {
    ctx.out().print_json({{"source", opts.source}, {"destination", opts.destination}});
  }
  return 0;
}

}  // namespace

void setup_scp(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand("scp", "copy files to or from a machine (NAME:path)");
  auto opts = std::make_shared<ScpOptions>();
  sub->add_flag("-r,--recursive", opts->recursive, "copy directories recursively");
  sub->add_option("source", opts->source, "local path or NAME:path")->required();
  sub->add_option("destination", opts->destination, "local path or NAME:path")->required();
  sub->callback(
      [&dispatch, opts] { dispatch.run = [opts](Context& ctx) { return run_scp(ctx, *opts); }; });
}

}  // namespace gm::cli
