// `gpumachine status NAME`: the machine's state, asked of its driver (for generic: reachable
// over SSH with the pinned host key, or not); a change is saved when no other command holds the
// machine's lock.
#include "cli/verbs.h"

#include "cost/autostop.h"
#include "gm/driver.h"
#include "gm/error.h"
#include "machine/connect.h"

namespace gm::cli {

void setup_status(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand("status", "print a machine's state");
  auto name = std::make_shared<std::string>();
  sub->add_option("name", *name, "machine name")->required();
  sub->callback([&dispatch, name] {
    dispatch.run = [name](Context& ctx) {
      MachineRecord record = ctx.store().load(*name);
      // Saved only under the lock, never over a busy command's record or a removed machine.
      MachineState state = machine::refresh_state(ctx.store(), record, "status");
      nlohmann::json doc = {{"name", record.name}, {"state", to_string(state)}};
      std::string autostop_line;
      if (state == MachineState::running && cost::autostop_from_record(record)) {
        // Only the agent on the host knows how long the machine has been idle.
        std::optional<cost::AgentStatus> agent =
            cost::query_agent_status(*machine::connect(record));
        autostop_line = cost::describe_status(agent);
        doc["autostop"] = agent ? agent->raw : nlohmann::json(nullptr);
        doc["autostop_summary"] = autostop_line;
      }
      if (ctx.json()) {
        ctx.out().print_json(doc);
      } else {
        ctx.out().print_line(std::string(to_string(state)));
        if (!autostop_line.empty()) {
          ctx.out().print_line(autostop_line);
        }
      }
      return 0;
    };
  });
}

}  // namespace gm::cli
