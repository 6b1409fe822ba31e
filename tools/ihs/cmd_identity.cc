// The identity commands (docs/identity.md): who is who, the evidence, and an operator's
// decisions. Reads and decisions work on a data directory (--data) and on a running ihsd
// (--connect); `ihs identity resolve` runs the resolver on a data directory (ihsd runs its own).
#include <capnp/message.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "projections/identity/identity.h"
#include "projections/identity/links.h"
#include "projections/identity/resolver.h"
#include "projections/registry.h"
#include "schema/json.h"
#include "tools/ihs/cli.h"
#include "tools/ihs/json_out.h"
#include "tools/ihs/progress.h"
#include "tools/ihs/projection_source.h"

namespace ihs::tools {
namespace {

namespace id = projections::identity;
using schema::HandleKind;

std::string CluesText(capnp::List<schema::IdentityClue>::Reader clues) {
  std::vector<std::string> parts;
  for (auto c : clues) {
    parts.push_back(absl::StrFormat("%s %.2f", schema::EnumName(c.getKind()), c.getWeight()));
  }
  return parts.empty() ? "no clues" : absl::StrJoin(parts, ", ");
}

void PrintResolution(schema::Resolution::Reader r) {
  auto p = r.getPerson();
  std::vector<std::string> streams;
  for (auto s : p.getStreams()) streams.emplace_back(s.cStr());
  std::cout << "stream " << r.getStream().cStr() << ": person " << p.getId().cStr() << " ("
            << streams.size() << (streams.size() == 1 ? " stream" : " streams") << ": "
            << absl::StrJoin(streams, ", ") << ")\n";
  for (auto l : p.getLinks()) {
    std::cout << "  link " << l.getA().cStr() << " ~ " << l.getB().cStr() << "  "
              << (l.getInferred() ? absl::StrFormat("inferred, score %.2f: %s", l.getConfidence(),
                                                    CluesText(l.getClues()))
                                  : absl::StrCat("explicit", l.getReason().size() > 0 ? ": " : "",
                                                 l.getReason().cStr()))
              << "  (position " << l.getPosition() << ")\n";
  }
  for (auto q : r.getPairs()) {
    if (q.getState() == schema::PairState::LINKED) continue;
    const std::string other = q.getA() == r.getStream() ? q.getB().cStr() : q.getA().cStr();
    std::cout << "  evidence with " << other << ": " << schema::EnumName(q.getState())
              << absl::StrFormat(", score %.2f: %s", q.getScore(), CluesText(q.getClues()));
    if (q.getState() == schema::PairState::SUGGESTED) {
      std::cout << "  (suggestion " << q.getSuggestionId().cStr() << ")";
    }
    std::cout << "\n";
  }
}

// The kind of a handle as people write them (projections/identity/identity.h), or the error that
// the argument is neither a known stream nor a handle.
absl::StatusOr<HandleKind> GuessKind(const std::string& h) {
  std::optional<HandleKind> kind = id::GuessHandleKind(h);
  if (kind) return *kind;
  return absl::InvalidArgumentError(absl::StrCat(
      "\"", h,
      "\" is no stream the identity projection knows, and not a handle it can tell the "
      "kind of (give --kind)"));
}

absl::StatusOr<HandleKind> ParseKind(const std::string& name) {
  const auto enumerants = capnp::Schema::from<HandleKind>().getEnumerants();
  std::vector<std::string> names;
  for (unsigned i = 1; i < enumerants.size(); ++i) {
    const std::string n = enumerants[i].getProto().getName().cStr();
    if (n == name) return static_cast<HandleKind>(i);
    names.push_back(n);
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown handle kind \"", name,
                                                 "\" (one of: ", absl::StrJoin(names, ", "), ")"));
}

struct ShowArgs {
  std::string what;
  std::string kind;
};

int Show(const Common& c, const ShowArgs& a) {
  auto source = OpenProjections(c);
  if (!source.ok()) return Fail(source.status());
  std::vector<std::unique_ptr<capnp::MallocMessageBuilder>> found;
  auto resolve_all = [&](const std::vector<std::string>& streams, auto resolve) -> absl::Status {
    for (const std::string& s : streams) {
      auto m = std::make_unique<capnp::MallocMessageBuilder>();
      IHS_RETURN_IF_ERROR(resolve(s, *m));
      found.push_back(std::move(m));
    }
    return absl::OkStatus();
  };
  absl::Status s = (*source)->Read(
      id::kName,
      [&](const projections::StateView& view, store::EventStore* store) -> absl::Status {
        auto resolve = [&](const std::string& x, capnp::MessageBuilder& m) {
          return id::Resolve(view, x, m);
        };
        if (a.kind.empty()) {
          capnp::MallocMessageBuilder probe;
          absl::Status st = id::Resolve(view, a.what, probe);
          if (!absl::IsNotFound(st)) return st.ok() ? resolve_all({a.what}, resolve) : st;
        }
        IHS_ASSIGN_OR_RETURN(HandleKind kind,
                             a.kind.empty() ? GuessKind(a.what) : ParseKind(a.kind));
        IHS_ASSIGN_OR_RETURN(std::string key, store->BlindIndexKey());
        IHS_ASSIGN_OR_RETURN(auto streams, id::FindHandle(view, key, kind, a.what));
        return resolve_all(streams, resolve);
      },
      [&](client::Client& client, uint64_t min) -> absl::Status {
        auto resolve = [&](const std::string& x, capnp::MessageBuilder& m) {
          return client.Resolve(x, min, m);
        };
        if (a.kind.empty()) {
          capnp::MallocMessageBuilder probe;
          absl::Status st = client.Resolve(a.what, min, probe);
          if (!absl::IsNotFound(st)) return st.ok() ? resolve_all({a.what}, resolve) : st;
        }
        IHS_ASSIGN_OR_RETURN(HandleKind kind,
                             a.kind.empty() ? GuessKind(a.what) : ParseKind(a.kind));
        IHS_ASSIGN_OR_RETURN(auto streams, client.FindHandle(kind, a.what, min));
        return resolve_all(streams, resolve);
      });
  if (!s.ok()) return Fail(s);
  if (found.empty()) {
    return Fail(absl::NotFoundError(absl::StrCat("no stream showed the handle \"", a.what, "\"")));
  }
  for (auto& m : found) {
    auto r = m->getRoot<schema::Resolution>().asReader();
    if (c.json) {
      nlohmann::json pairs = nlohmann::json::array();
      for (auto q : r.getPairs()) pairs.push_back(PairScoreJson(q));
      std::cout << JsonLine({{"stream", r.getStream().cStr()},
                             {"person", PersonJson(r.getPerson())},
                             {"pairs", pairs},
                             {"checkpoint", r.getCheckpoint()}})
                << "\n";
    } else {
      PrintResolution(r);
    }
  }
  return kExitOk;
}

struct SuggestionArgs {
  uint32_t limit = 50;
  std::string after;
};

int Suggestions(const Common& c, const SuggestionArgs& a) {
  auto source = OpenProjections(c);
  if (!source.ok()) return Fail(source.status());
  capnp::MallocMessageBuilder m;
  std::string after = a.after;
  std::replace(after.begin(), after.end(), ' ', '\0');
  absl::Status s = (*source)->Read(
      id::kName,
      [&](const projections::StateView& view, store::EventStore*) -> absl::Status {
        IHS_ASSIGN_OR_RETURN(auto pairs,
                             id::ListPairs(view, schema::PairState::SUGGESTED, a.limit, after));
        auto list = m.initRoot<schema::PairList>().initPairs(static_cast<unsigned>(pairs.size()));
        for (unsigned i = 0; i < pairs.size(); ++i) {
          capnp::MallocMessageBuilder one;
          IHS_RETURN_IF_ERROR(id::ReadPair(view, pairs[i].first, pairs[i].second, one));
          list.setWithCaveats(i, one.getRoot<schema::PairScore>().asReader());
        }
        return absl::OkStatus();
      },
      [&](client::Client& client, uint64_t min) {
        return client.IdentitySuggestions(a.after, a.limit, min, m);
      });
  if (!s.ok()) return Fail(s);
  for (auto p : m.getRoot<schema::PairList>().asReader().getPairs()) {
    if (c.json) {
      std::cout << JsonLine(PairScoreJson(p)) << "\n";
    } else {
      std::cout << p.getSuggestionId().cStr() << "  " << p.getA().cStr() << " ~ " << p.getB().cStr()
                << absl::StrFormat("  score %.2f: %s", p.getScore(), CluesText(p.getClues()))
                << "\n";
    }
  }
  return kExitOk;
}

int Stats(const Common& c) {
  auto source = OpenProjections(c);
  if (!source.ok()) return Fail(source.status());
  capnp::MallocMessageBuilder m;
  absl::Status s = (*source)->Read(
      id::kName,
      [&](const projections::StateView& view, store::EventStore*) {
        return id::ReadStats(view, m);
      },
      [&](client::Client& client, uint64_t min) { return client.IdentityStats(min, m); });
  if (!s.ok()) return Fail(s);
  auto st = m.getRoot<schema::IdentityStats>().asReader();
  const nlohmann::json j = {{"streams", st.getStreams()},
                            {"persons", st.getPersons()},
                            {"multiStreamPersons", st.getMultiStreamPersons()},
                            {"largestPerson", st.getLargestPerson()},
                            {"explicitLinks", st.getExplicitLinks()},
                            {"inferredLinks", st.getInferredLinks()},
                            {"unlinks", st.getUnlinks()},
                            {"pending", st.getPending()},
                            {"suggestions", st.getSuggestions()},
                            {"checkpoint", st.getCheckpoint()}};
  if (c.json) {
    std::cout << JsonLine(j) << "\n";
    return kExitOk;
  }
  for (const auto& [k, v] : j.items()) std::cout << absl::StrFormat("%-20s %s\n", k, v.dump());
  return kExitOk;
}

// A decision: link/unlink (a, b) or accept/reject (a = the suggestion id).
struct DecisionArgs {
  std::string a, b, reason;
};

int Decide(const Common& c, const DecisionArgs& a, bool suggestion, bool yes) {
  auto source = OpenProjections(c);
  if (!source.ok()) return Fail(source.status());
  uint64_t position = 0;
  absl::Status s = (*source)->Read(
      id::kName,
      [&](const projections::StateView& view, store::EventStore* store) -> absl::Status {
        absl::StatusOr<uint64_t> p;
        if (suggestion) {
          p = id::DecideSuggestion(*store, view, a.a, yes, a.reason, LoginName());
        } else {
          id::LinkRequest r;
          r.a = a.a;
          r.b = a.b;
          r.unlink = !yes;
          r.reason = a.reason;
          r.requested_by = LoginName();
          p = id::AppendLink(*store, view, r);
        }
        IHS_RETURN_IF_ERROR(p.status());
        position = *p;
        return absl::OkStatus();
      },
      [&](client::Client& client, uint64_t) -> absl::Status {
        absl::StatusOr<uint64_t> p = suggestion ? client.DecideSuggestion(a.a, yes, a.reason)
                                                : client.Link(a.a, a.b, !yes, a.reason);
        IHS_RETURN_IF_ERROR(p.status());
        position = *p;
        return absl::OkStatus();
      });
  if (!s.ok()) return Fail(s);
  if (c.json) {
    std::cout << JsonLine({{"position", position}, {"stream", id::kIdentityStream}}) << "\n";
  } else {
    std::cout << "recorded at position " << position << " on " << id::kIdentityStream << "\n";
  }
  return kExitOk;
}

int Resolve(const Common& c) {
  return RunAppender(
      c, id::kName,
      "ihsd runs the resolver itself; `ihs identity resolve` is for a data directory (--data)",
      "links",
      [](store::EventStore& store, projections::Runner& runner) -> absl::StatusOr<AppenderReport> {
        id::Resolver resolver(store, runner);
        IHS_ASSIGN_OR_RETURN(id::ResolverReport r, resolver.RunUntilSettled());
        return AppenderReport{r.appended, r.present, r.passes};
      });
}

}  // namespace

void RegisterIdentityCommands(Cli& cli) {
  Common& common = cli.common();
  CLI::App* group = cli.Group("identity", "who is who: persons, links, evidence, suggestions");

  static ShowArgs show;
  CLI::App* s =
      group->add_subcommand("show", "the person of a stream or handle, with the evidence");
  s->add_option("what", show.what, "a stream id, or a handle (email, phone, @twitter, fb:...)")
      ->required();
  s->add_option("--kind", show.kind, "the handle's kind (email, phone, postal, twitter, ...)");
  cli.AddWhere(s);
  cli.OnRun(s, [&common] { return Show(common, show); });

  static SuggestionArgs sugg;
  CLI::App* g = group->add_subcommand("suggestions", "pairs below the threshold, for an operator");
  g->add_option("--limit", sugg.limit, "at most this many (1-1000)")
      ->check(CLI::Range(1, 1000))
      ->check(kWholeNumber);
  g->add_option("--after", sugg.after, "the pair \"A B\" the previous page ended with");
  cli.AddWhere(g);
  cli.OnRun(g, [&common] { return Suggestions(common, sugg); });

  CLI::App* t = group->add_subcommand("stats", "persons, links, pending pairs and suggestions");
  cli.AddWhere(t);
  cli.OnRun(t, [&common] { return Stats(common); });

  static DecisionArgs link, unlink, accept, reject;
  struct Decision {
    const char* name;
    const char* help;
    DecisionArgs* args;
    bool suggestion, yes;
  };
  for (const Decision& d :
       {Decision{"link", "the two streams are one person", &link, false, true},
        Decision{"unlink", "the two streams are not one person: split the link", &unlink, false,
                 false},
        Decision{"accept", "accept a suggestion: link its pair", &accept, true, true},
        Decision{"reject", "reject a suggestion: its pair is two people", &reject, true, false}}) {
    CLI::App* sub = group->add_subcommand(d.name, d.help);
    if (d.suggestion) {
      sub->add_option("id", d.args->a, "the suggestion's id (ihs identity suggestions)")
          ->required();
      sub->add_option("--reason", d.args->reason, "why, for the trail");
    } else {
      sub->add_option("a", d.args->a, "a stream")->required();
      sub->add_option("b", d.args->b, "another stream")->required();
      sub->add_option("--reason", d.args->reason, "why, for the trail")->required();
    }
    cli.AddWhere(sub);
    DecisionArgs* args = d.args;
    const bool suggestion = d.suggestion, yes = d.yes;
    cli.OnRun(sub,
              [&common, args, suggestion, yes] { return Decide(common, *args, suggestion, yes); });
  }

  CLI::App* r = group->add_subcommand(
      "resolve", "append the links identity resolution decided (ihsd does it as it runs)");
  cli.AddWhere(r);
  cli.OnRun(r, [&common] { return Resolve(common); });
}

}  // namespace ihs::tools
