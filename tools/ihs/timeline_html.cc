#include "tools/ihs/timeline_html.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "schema/json.h"
#include "tools/ihs/cli.h"

namespace ihs::tools {
namespace {

std::string Esc(absl::string_view s) {
  return absl::StrReplaceAll(s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}});
}

std::string Hex(capnp::Data::Reader d) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(d.begin()), d.size()));
}

constexpr int kLaneHeight = 56;
constexpr int kLeft = 130;
constexpr int kWidth = 1100;

}  // namespace

std::string TimelineHtml(schema::TimelineSummary::Reader summary, schema::TimelinePage::Reader page,
                         const AtRisk* at_risk) {
  auto entries = page.getEntries();
  // Lanes: the channels of the page, in schema order.
  std::map<uint16_t, int> lane;
  for (auto e : entries) lane[static_cast<uint16_t>(e.getChannel())] = 0;
  int n = 0;
  for (auto& [c, i] : lane) i = n++;
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  for (auto e : entries) {
    lo = std::min(lo, e.getOccurredAt());
    hi = std::max(hi, e.getOccurredAt());
  }
  if (entries.size() == 0) lo = hi = 0;
  const double span = hi > lo ? static_cast<double>(hi - lo) : 1.0;
  auto x = [&](int64_t t) {
    return kLeft + 20 + (kWidth - kLeft - 40) * (static_cast<double>(t - lo) / span);
  };
  auto y = [&](schema::Channel c) {
    return 40 + lane[static_cast<uint16_t>(c)] * kLaneHeight + kLaneHeight / 2;
  };
  const int height = 60 + n * kLaneHeight;

  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\">\n",
      kWidth, height);
  for (const auto& [c, i] : lane) {
    const char* name = schema::EnumName(static_cast<schema::Channel>(c));
    absl::StrAppendFormat(
        &svg,
        "<g class=\"lane\" data-channel=\"%s\"><rect x=\"0\" y=\"%d\" width=\"%d\" "
        "height=\"%d\" class=\"band%d\"/><text x=\"8\" y=\"%d\">%s</text></g>\n",
        name, 40 + i * kLaneHeight, kWidth, kLaneHeight, i % 2,
        40 + i * kLaneHeight + kLaneHeight / 2 + 5, name);
  }
  // The time axis: a tick at each whole step, the smallest of 6 hours, 1, 2, 7, 14, 30, 91 or 365
  // days that makes at most 12 ticks, labelled with its date (and hour, for steps under a day).
  if (entries.size() > 0 && hi > lo) {
    constexpr int64_t kDay = int64_t{86400} * 1000000;
    int64_t step = 365 * kDay;
    for (int64_t s : {kDay / 4, kDay, 2 * kDay, 7 * kDay, 14 * kDay, 30 * kDay, 91 * kDay}) {
      if (span / static_cast<double>(s) <= 12) {
        step = s;
        break;
      }
    }
    const int64_t first = (lo / step + (lo % step > 0 ? 1 : 0)) * step;
    for (int64_t t = first; t <= hi; t += step) {
      const std::string when = schema::FormatMicros(t);
      absl::StrAppendFormat(&svg,
                            "<line class=\"tick\" x1=\"%.1f\" x2=\"%.1f\" y1=\"30\" y2=\"%d\"/>"
                            "<text class=\"axis\" x=\"%.1f\" y=\"24\">%s</text>\n",
                            x(t), x(t), height - 20, x(t) + 2,
                            step < kDay ? absl::StrCat(when.substr(5, 5), " ", when.substr(11, 5))
                                        : when.substr(0, 10));
    }
  } else if (entries.size() > 0) {
    absl::StrAppendFormat(&svg, "<text class=\"axis\" x=\"%d\" y=\"24\">%s</text>\n", kLeft,
                          schema::FormatMicros(lo).substr(0, 16));
  }
  // Threads: consecutive messages of a thread, connected.
  std::map<std::string, std::vector<schema::TimelineEntry::Reader>> threads;
  for (auto e : entries) {
    if (e.getThread().size() > 0) threads[e.getThread().cStr()].push_back(e);
  }
  for (const auto& [name, members] : threads) {
    for (size_t i = 1; i < members.size(); ++i) {
      absl::StrAppendFormat(
          &svg, "<path class=\"thread\" data-thread=\"%s\" d=\"M%.1f %d L%.1f %d\"/>\n", Esc(name),
          x(members[i - 1].getOccurredAt()), y(members[i - 1].getChannel()),
          x(members[i].getOccurredAt()), y(members[i].getChannel()));
    }
  }
  // Switches drawn from the message they follow up on, when it is on this page.
  std::map<std::string, schema::TimelineEntry::Reader> by_id;
  for (auto e : entries) by_id.emplace(Hex(e.getEventId()), e);
  for (auto e : entries) {
    if (!e.hasSwitchFrom()) continue;
    auto from = by_id.find(Hex(e.getSwitchFrom().getEventId()));
    if (from == by_id.end()) continue;
    absl::StrAppendFormat(&svg, "<path class=\"switchlink\" d=\"M%.1f %d L%.1f %d\"/>\n",
                          x(from->second.getOccurredAt()), y(from->second.getChannel()),
                          x(e.getOccurredAt()), y(e.getChannel()));
  }
  for (auto e : entries) {
    std::string cls = "item";
    std::string note;
    if (e.getResponse().isOpen()) {
      cls += " open";
      note = absl::StrCat("\nOPEN: waiting ", e.getWaitingSeconds() / 3600, " h");
      if (at_risk != nullptr) {
        absl::StrAppendFormat(&note, "; an audience of %.0f at risk if taken public",
                              at_risk->risk);
      }
    } else if (e.getResponse().isAnswered()) {
      note = absl::StrCat("\nanswered after ", e.getResponse().getAnswered().getWallSeconds() / 60,
                          " min (", e.getResponse().getAnswered().getServiceSeconds() / 60,
                          " min in service hours)");
    }
    if (e.hasSwitchFrom()) {
      cls += " switch";
      absl::StrAppend(&note, "\nCHANNEL SWITCH from ",
                      schema::EnumName(e.getSwitchFrom().getChannel()));
    }
    if (e.getCompanyReply()) cls += " reply";
    if (e.getRetractedBy().size() > 0) cls += " retracted";
    std::string title =
        absl::StrCat(schema::FormatMicros(e.getOccurredAt()).substr(0, 19), " ",
                     schema::EnumName(e.getDirection()), " ", schema::EnumName(e.getType()), note);
    if (e.getSubject().size() > 0) absl::StrAppend(&title, "\n", e.getSubject().cStr());
    absl::StrAppendFormat(&svg,
                          "<circle class=\"%s\" data-event=\"%s\" cx=\"%.1f\" cy=\"%d\" r=\"%d\">"
                          "<title>%s</title></circle>\n",
                          cls, Hex(e.getEventId()), x(e.getOccurredAt()), y(e.getChannel()),
                          e.hasSwitchFrom() || e.getResponse().isOpen() ? 9 : 6, Esc(title));
  }
  svg += "</svg>\n";

  const std::string party = Esc(summary.getParty().cStr());
  std::string html = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>Timeline of ",
      party,
      "</title>\n<style>\n"
      "body{font:14px system-ui,sans-serif;margin:16px;color:#222}\n"
      "h1{font-size:18px;margin:0 0 4px}\n.facts{color:#555;margin-bottom:12px}\n"
      ".band0{fill:#f6f7f9}.band1{fill:#eceff3}\ntext{font-size:12px;fill:#333}\n"
      ".axis{fill:#777}\n.tick{stroke:#d5d9e0}\n"
      ".entries{list-style:none;padding:0}\n.entries li{border-top:1px solid #e5e7eb;padding:4px "
      "0}\n"
      ".entries .state{color:#555}\n.entries .open{color:#b42318;font-weight:600}\n"
      ".entries .text{white-space:pre-wrap;color:#333;margin:2px 0 0 "
      "12px}\n.thread{stroke:#7a8ca5;stroke-width:1.5;fill:none}\n"
      ".switchlink{stroke:#e07b00;stroke-width:2;stroke-dasharray:5 3;fill:none}\n"
      ".item{fill:#4a78c2;stroke:#fff;stroke-width:1.5}\n.item.reply{fill:#3a9a5b}\n"
      ".item.open{fill:#d33;stroke:#800;stroke-width:2}\n"
      ".item.switch{fill:#e07b00;stroke:#7a4300;stroke-width:2}\n.item.retracted{opacity:.35}\n"
      ".legend span{display:inline-block;margin-right:14px}\n"
      ".dot{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px}\n"
      "</style></head>\n<body>\n<h1>Timeline of ",
      party, "</h1>\n");
  const std::string median = summary.getAnswered() == 0
                                 ? "median —"
                                 : absl::StrFormat("median %d min, %d min in service hours",
                                                   summary.getMedianResponseSeconds() / 60,
                                                   summary.getMedianResponseServiceSeconds() / 60);
  absl::StrAppendFormat(
      &html,
      "<div class=\"facts\">%s, <b>%d open</b>, %d answered (%s), <b>%s</b>; %s drawn%s</div>\n",
      Counted(summary.getEntries(), "touchpoint", "touchpoints"), summary.getOpen().size(),
      summary.getAnswered(), median,
      Counted(summary.getChannelSwitches(), "channel switch", "channel switches"),
      Counted(static_cast<int64_t>(entries.size()), "entry", "entries"),
      page.getNextCursor().size() > 0
          ? absl::StrCat(", the first of the range: more with --cursor ",
                         page.getNextCursor().cStr())
          : "");
  if (at_risk != nullptr && summary.getOpen().size() > 0) {
    absl::StrAppendFormat(&html,
                          "<div class=\"atrisk\">At risk: an audience of <b>%.0f</b> if an open "
                          "message is taken public (chance %.2f; %.0f reached per post)</div>\n",
                          at_risk->risk, at_risk->chance, at_risk->reach_per_post);
  }
  html +=
      "<div class=\"legend\"><span><i class=\"dot\" "
      "style=\"background:#4a78c2\"></i>touchpoint</span>"
      "<span><i class=\"dot\" style=\"background:#3a9a5b\"></i>company reply</span>"
      "<span><i class=\"dot\" style=\"background:#d33\"></i>open (unanswered)</span>"
      "<span><i class=\"dot\" style=\"background:#e07b00\"></i>channel switch</span></div>\n";
  html += svg;
  // Every entry, its state and its content in the clear: nothing only on hover.
  html += "<ol class=\"entries\">\n";
  for (auto e : entries) {
    std::string state;
    if (e.getResponse().isOpen()) {
      state = absl::StrCat("<span class=\"open\">OPEN, waiting ", e.getWaitingSeconds() / 3600,
                           " h</span>");
    } else if (e.getResponse().isAnswered()) {
      auto ans = e.getResponse().getAnswered();
      state = absl::StrCat("answered on ", schema::EnumName(ans.getReplyChannel()), " after ",
                           ans.getWallSeconds() / 60, " min (", ans.getServiceSeconds() / 60,
                           " min in service hours)");
    }
    if (e.hasSwitchFrom()) {
      absl::StrAppend(&state, state.empty() ? "" : "; ", "<b>channel switch from ",
                      schema::EnumName(e.getSwitchFrom().getChannel()), "</b>");
    }
    absl::StrAppendFormat(
        &html, "<li data-event=\"%s\">%s <b>%s</b> %s %s%s <span class=\"state\">%s</span>",
        Hex(e.getEventId()), schema::FormatMicros(e.getOccurredAt()).substr(0, 16),
        schema::EnumName(e.getChannel()), schema::EnumName(e.getDirection()),
        schema::EnumName(e.getType()),
        e.getParty().size() > 0 && e.getParty() != page.getParty()
            ? absl::StrCat(" [", Esc(e.getParty().cStr()), "]")
            : "",
        state);
    if (e.getSubject().size() > 0 || e.getText().size() > 0) {
      absl::StrAppend(&html, "<div class=\"text\"><b>", Esc(e.getSubject().cStr()), "</b>",
                      e.getSubject().size() > 0 && e.getText().size() > 0 ? "\n" : "",
                      Esc(e.getText().cStr()), "</div>");
    }
    html += "</li>\n";
  }
  html += "</ol>\n";
  html +=
      "<script>\n"
      "window.onerror=function(m){document.body.setAttribute('data-error',String(m));};\n"
      "document.body.setAttribute('data-lanes',document.querySelectorAll('g.lane').length);\n"
      "document.body.setAttribute('data-items',document.querySelectorAll('circle.item').length);\n"
      "document.body.setAttribute('data-ready','1');\n"
      "</script>\n</body></html>\n";
  return html;
}

absl::Status WriteTimelineHtml(const std::string& path, schema::TimelineSummary::Reader summary,
                               schema::TimelinePage::Reader page, const AtRisk* at_risk) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << TimelineHtml(summary, page, at_risk);
    out.close();
    if (!out) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      return absl::UnavailableError(absl::StrCat("cannot write ", tmp));
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);  // nothing of a failed write stays behind
    return absl::UnavailableError(absl::StrCat("cannot write ", path, ": ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace ihs::tools
