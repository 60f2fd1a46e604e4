// `gpumachine inspect NAME`: the full record (it never holds secrets) plus derived fields.
#include "cli/verbs.h"

#include "ssh/session.h"

namespace gm::cli {

void setup_inspect(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand("inspect", "print a machine's full record as JSON");
  auto name = std::make_shared<std::string>();
  sub->add_option("name", *name, "machine name")->required();
  sub->callback([&dispatch, name] {
    dispatch.run = [name](Context& ctx) {
      MachineRecord record = ctx.store().load(*name);
      nlohmann::json doc = record;
      doc["ssh"]["host_key_fingerprint"] =
          record.ssh.host_key.empty()
              ? nlohmann::json(nullptr)
              : nlohmann::json(ssh::fingerprint_sha256(record.ssh.host_key));
      doc["paths"] = {{"dir", ctx.store().machine_dir(*name).string()},
                      {"known_hosts", ctx.store().known_hosts_path(*name).string()}};
      ctx.out().print_json(doc);  // JSON in both formats: a record is a document
      return 0;
    };
  });
}

}  // namespace gm::cli
