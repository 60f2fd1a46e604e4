// The chain (first provider with credentials wins), the caching decorator, and the process-wide
// default chain.
#include <mutex>

#include "aws/credentials.h"
#include "gm/error.h"
#include "util/log.h"

namespace gm::aws {

namespace {

// Temporary credentials are refreshed this long before they expire, so a request signed now
// cannot reach AWS with credentials that died in flight.
constexpr std::chrono::minutes k_refresh_margin{5};

class ChainProvider : public CredentialsProvider {
 public:
  explicit ChainProvider(std::vector<std::unique_ptr<CredentialsProvider>> providers)
      : m_providers(std::move(providers)) {}

  std::string description() const override {
    std::string out;
    for (const auto& provider : m_providers) {
      out += (out.empty() ? "" : "; ") + provider->description();
    }
    return out;
  }

  std::optional<Credentials> load() override {
    std::string tried;
    for (const auto& provider : m_providers) {
      if (std::optional<Credentials> credentials = provider->load()) {
        util::debug("aws: credentials from " + credentials->source);
        return credentials;
      }
      tried += (tried.empty() ? "" : "; ") + provider->description();
    }
    throw Error("AWS credentials", "none found", "tried " + tried,
                "run \"aws configure\", set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
                "choose a profile with AWS_PROFILE");
  }

 private:
  std::vector<std::unique_ptr<CredentialsProvider>> m_providers;
};

class CachedProvider : public CredentialsProvider {
 public:
  CachedProvider(std::unique_ptr<CredentialsProvider> inner, Clock clock)
      : m_inner(std::move(inner)), m_clock(std::move(clock)) {
    if (!m_clock) {
      m_clock = [] { return std::chrono::system_clock::now(); };
    }
  }

  std::string description() const override { return m_inner->description(); }

  std::optional<Credentials> load() override {
    std::lock_guard lock(m_mutex);
    bool fresh =
        m_cached && (!m_cached->expiration || m_clock() + k_refresh_margin < *m_cached->expiration);
    if (!fresh) {
      m_cached = m_inner->load();
    }
    return m_cached;
  }

 private:
  std::unique_ptr<CredentialsProvider> m_inner;
  Clock m_clock;
  std::mutex m_mutex;
  std::optional<Credentials> m_cached;
};

}  // namespace

std::unique_ptr<CredentialsProvider> make_chain_provider(
    std::vector<std::unique_ptr<CredentialsProvider>> providers) {
  return std::make_unique<ChainProvider>(std::move(providers));
}

std::unique_ptr<CredentialsProvider> make_cached_provider(
    std::unique_ptr<CredentialsProvider> inner, Clock clock) {
  return std::make_unique<CachedProvider>(std::move(inner), std::move(clock));
}

std::unique_ptr<CredentialsProvider> make_default_chain(ProviderOptions options) {
  std::vector<std::unique_ptr<CredentialsProvider>> providers;
  providers.push_back(make_environment_provider());
  providers.push_back(make_profile_provider(options));
  providers.push_back(make_imds_provider(options));
  Clock clock = options.clock;
  return make_cached_provider(make_chain_provider(std::move(providers)), std::move(clock));
}

Credentials default_credentials() {
  static std::unique_ptr<CredentialsProvider> chain = make_default_chain();
  // The chain either returns credentials or throws listing what it tried.
  return *chain->load();
}

}  // namespace gm::aws
