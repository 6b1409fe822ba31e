// How ihs prints events: one per line as text (position, time, stream, version, type, and the
// content when opened), or as JSON lines (schema/json.h). Used by read, tail and audit replay.
#ifndef IHS_TOOLS_IHS_EVENT_PRINTER_H_
#define IHS_TOOLS_IHS_EVENT_PRINTER_H_

#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "schema/json.h"
#include "store/stored_event.h"

namespace ihs::tools {

class EventPrinter {
 public:
  // `silent`: prints nothing, only counts and remembers the last version (a probe).
  explicit EventPrinter(bool json, bool silent = false) : json_(json), silent_(silent) {}

  // The table's header, once: before the first event, or at the end when there was none (so an
  // error prints no header).
  void Header() {
    if (json_ || silent_ || header_done_) return;
    header_done_ = true;
    absl::PrintF("%-8s %-8s %-27s %-18s %-10s %-10s %s\n", "POSITION", "VERSION", "OCCURRED",
                 "STREAM", "CHANNEL", "DIRECTION", "TYPE            SUBJECT / TEXT");
  }

  // `E` is store::StoredEvent or client::RemoteEvent: the same output either way.
  template <typename E>
  void Print(const E& e) {
    Header();
    auto ev = e.event();
    last_version_ = ev.getStreamVersion();
    ++printed_;
    if (silent_) return;
    if (json_) {
      std::cout << JsonOf(e) << "\n";
      return;
    }
    std::string what, channel = "-", direction = "-";
    switch (ev.which()) {
      case schema::Event::TOUCHPOINT: {
        auto tp = ev.getTouchpoint();
        channel = schema::EnumName(tp.getChannel());
        direction = schema::EnumName(tp.getDirection());
        what = schema::EnumName(tp.getType());
        break;
      }
      case schema::Event::PARTY_PROFILE:
        what = "partyProfile";
        break;
      case schema::Event::IDENTITY_LINK:
        what = "identityLink";
        break;
      case schema::Event::SEGMENT_DEFINITION: {
        auto d = ev.getSegmentDefinition();
        what = d.getRetired()
                   ? absl::StrCat("segment ", d.getName().cStr(), " retired by ",
                                  d.getRequestedBy().cStr())
                   : absl::StrCat("segment ", d.getName().cStr(), " := ", d.getRule().cStr());
        break;
      }
      case schema::Event::COMMUNITY_BAND: {
        auto b = ev.getCommunityBand();
        what =
            b.getInside()
                ? absl::StrFormat("%s inside \"%s\" (%g, rank %d of %d)", b.getParty().cStr(),
                                  b.getClause().cStr(), b.getFigure(), b.getRank(), b.getRanked())
                : absl::StrFormat("%s outside \"%s\"", b.getParty().cStr(), b.getClause().cStr());
        break;
      }
      case schema::Event::CONTENT_ACCESS: {
        auto a = ev.getContentAccess();
        what = absl::StrCat("content of ", a.getParty().cStr(), " (", a.getEvents().size(),
                            a.getEvents().size() == 1 ? " event" : " events", ") shown to ",
                            a.getReadBy().cStr(), " (", a.getRole().cStr(), ") via ",
                            a.getVia().cStr());
        break;
      }
      case schema::Event::ERASURE_REQUEST:
        what = absl::StrCat("erasure by ", ev.getErasureRequest().getRequestedBy().cStr(), ": ",
                            ev.getErasureRequest().getReason().cStr());
        break;
      case schema::Event::LEGAL_HOLD:
        what = absl::StrCat(ev.getLegalHold().getLift() ? "hold lifted by " : "legal hold by ",
                            ev.getLegalHold().getRequestedBy().cStr(), ": ",
                            ev.getLegalHold().getReason().cStr());
        break;
      case schema::Event::CONTENT_EXPIRY: {
        std::vector<std::string> classes;
        for (auto c : ev.getContentExpiry().getExpired()) {
          classes.push_back(absl::StrCat(schema::EnumName(c.getChannel()), " ",
                                         schema::EnumName(c.getType()), " of ", c.getYear()));
        }
        what = absl::StrCat(
            "content expired (", absl::StrJoin(classes, ", "), ") by ",
            ev.getContentExpiry().getRequestedBy().cStr(), ": ",
            absl::StrReplaceAll(ev.getContentExpiry().getRules().cStr(), {{"\n", "; "}}));
        break;
      }
      case schema::Event::RETENTION_RUN: {
        auto r = ev.getRetentionRun();
        what = absl::StrCat("retention run by ", r.getRequestedBy().cStr(), ": ", r.getClasses(),
                            " keys of ", r.getParties(), " parties expired, ", r.getHeld().size(),
                            " held");
        break;
      }
      default:
        what = absl::StrCat("type#", static_cast<int>(ev.which()));
    }
    switch (e.content_state()) {
      case store::ContentState::kOpen: {
        auto c = e.content();
        std::string text = c.hasSubject() ? std::string(c.getSubject().cStr()) : "";
        if (c.hasText()) {
          if (!text.empty()) text += " | ";
          text += c.getText().cStr();
        }
        what = absl::StrFormat("%-15s %s", what, Shorten(text, 60));
        break;
      }
      case store::ContentState::kSealed:
        what = absl::StrFormat("%-15s [sealed]", what);
        break;
      case store::ContentState::kErased:
        what = absl::StrFormat("%-15s [erased]", what);
        break;
      case store::ContentState::kNone:
        break;
    }
    absl::PrintF("%-8d %-8d %-27s %-18s %-10s %-10s %s\n", e.position(), ev.getStreamVersion(),
                 schema::FormatMicros(ev.getOccurredAt()), Shorten(ev.getStreamId().cStr(), 18),
                 channel, direction, what);
  }

  // The event as one JSON object: as stored, with its content in the clear when it was opened.
  template <typename E>
  std::string JsonOf(const E& e) {
    capnp::MallocMessageBuilder mb;
    mb.setRoot(e.event());
    auto out = mb.getRoot<schema::Event>();
    if (e.content_state() == store::ContentState::kOpen) {
      out.setContent(e.content());
      out.disownSealedContent();
    }
    return json_codec_.Encode(out.asReader());
  }

  // How many events were printed.
  size_t printed() const { return printed_; }

  // The stream version of the event printed last.
  uint64_t last_version() const { return last_version_; }

 private:
  static std::string Shorten(std::string s, size_t n) {
    for (char& c : s) {
      if (c == '\n' || c == '\t') c = ' ';
    }
    if (s.size() > n) s = s.substr(0, n - 3) + "...";
    return s;
  }
  bool json_;
  bool silent_ = false;
  bool header_done_ = false;
  uint64_t last_version_ = 0;
  size_t printed_ = 0;
  schema::EventJson json_codec_;
};

}  // namespace ihs::tools

#endif  // IHS_TOOLS_IHS_EVENT_PRINTER_H_
