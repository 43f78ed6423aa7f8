#include "runtime/controller/maintenance.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace plinth::controller {

namespace {

constexpr int64_t kDay = 86400;

int64_t FloorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0);
}

// Days since 1970-01-01 of a proleptic Gregorian date (month 1..12).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = FloorDiv(y, 400);
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct Civil {
  int64_t year;
  int month, day;
};

Civil CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = FloorDiv(z, 146097);
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return {yoe + era * 400 + (m <= 2 ? 1 : 0), m, d};
}

int Weekday(int64_t days) {  // 0 = Sunday; 1970-01-01 was a Thursday
  return static_cast<int>(((days % 7) + 7 + 4) % 7);
}

bool Leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int MonthDays(int64_t y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && Leap(y) ? 29 : kDays[m - 1];
}

std::string DateText(int64_t days) {
  Civil c = CivilFromDays(days);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%04lld-%02d-%02d", static_cast<long long>(c.year), c.month, c.day);
  return buf;
}

int64_t Be(const std::string& b, size_t at, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  if (n == 4) return static_cast<int32_t>(static_cast<uint32_t>(v));
  return static_cast<int64_t>(v);
}

// [+-]hh[:mm[:ss]] at s[i]; seconds; false when malformed.
bool ParseHms(const std::string& s, size_t& i, int* out) {
  int sign = 1;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) sign = s[i++] == '-' ? -1 : 1;
  int parts[3] = {0, 0, 0}, n = 0;
  while (n < 3) {
    if (i >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    int v = 0, digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && digits < 3) {
      v = v * 10 + (s[i++] - '0');
      ++digits;
    }
    parts[n++] = v;
    if (i < s.size() && s[i] == ':') {
      ++i;
      continue;
    }
    break;
  }
  if (parts[0] > 167 || parts[1] > 59 || parts[2] > 59) return false;
  *out = sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]);
  return true;
}

bool ParseZoneName(const std::string& s, size_t& i) {
  if (i < s.size() && s[i] == '<') {
    size_t close = s.find('>', i);
    if (close == std::string::npos) return false;
    i = close + 1;
    return true;
  }
  size_t from = i;
  while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
  return i - from >= 3;
}

}  // namespace

// ------------------------------------------------------------------ zones

TimeZone TimeZone::Fixed(int offset_s, std::string name) {
  TimeZone tz;
  tz.name_ = std::move(name);
  tz.initial_offset_ = offset_s;
  return tz;
}

bool TimeZone::ParseRule(const std::string& text, TimeZone* tz) {
  size_t i = 0;
  if (!ParseZoneName(text, i)) return false;
  int off = 0;
  if (!ParseHms(text, i, &off)) return false;
  tz->std_offset_ = -off;  // POSIX offsets count west
  tz->has_rule_ = true;
  if (i == text.size()) return true;
  if (!ParseZoneName(text, i)) return false;
  tz->has_dst_ = true;
  tz->dst_offset_ = tz->std_offset_ + 3600;
  if (i < text.size() && text[i] != ',') {
    if (!ParseHms(text, i, &off)) return false;
    tz->dst_offset_ = -off;
  }
  auto when = [&](When* w) {
    if (i >= text.size() || text[i] != ',') return false;
    ++i;
    auto number = [&](int* v) {
      if (i >= text.size() || !std::isdigit(static_cast<unsigned char>(text[i]))) return false;
      *v = 0;
      while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])))
        *v = *v * 10 + (text[i++] - '0');
      return true;
    };
    if (text[i] == 'M') {
      ++i;
      w->kind = 'M';
      if (!number(&w->month) || i >= text.size() || text[i++] != '.' || !number(&w->week) ||
          i >= text.size() || text[i++] != '.' || !number(&w->day))
        return false;
      if (w->month < 1 || w->month > 12 || w->week < 1 || w->week > 5 || w->day > 6) return false;
    } else if (text[i] == 'J') {
      ++i;
      w->kind = 'J';
      if (!number(&w->day) || w->day < 1 || w->day > 365) return false;
    } else {
      w->kind = 'D';
      if (!number(&w->day) || w->day > 365) return false;
    }
    w->time_s = 7200;
    if (i < text.size() && text[i] == '/') {
      ++i;
      if (!ParseHms(text, i, &w->time_s)) return false;
    }
    return true;
  };
  return when(&tz->start_) && when(&tz->end_) && i == text.size();
}

int TimeZone::RuleOffsetAt(int64_t utc_s) const {
  if (!has_dst_) return std_offset_;
  const int64_t year = CivilFromDays(FloorDiv(utc_s + std_offset_, kDay)).year;
  // Local midnight day number of a rule's date in `year`, plus its time.
  auto local_switch = [&](const When& w) -> int64_t {
    int64_t day;
    if (w.kind == 'M') {
      const int64_t first = DaysFromCivil(year, w.month, 1);
      int dom = 1 + (w.day - Weekday(first) + 7) % 7 + (w.week - 1) * 7;
      while (dom > MonthDays(year, w.month)) dom -= 7;
      day = first + dom - 1;
    } else if (w.kind == 'J') {
      int n = w.day;  // 1..365, February 29 never counted
      day = DaysFromCivil(year, 1, 1) + n - 1 + (Leap(year) && n >= 60 ? 1 : 0);
    } else {
      day = DaysFromCivil(year, 1, 1) + w.day;
    }
    return day * kDay + w.time_s;
  };
  const int64_t start = local_switch(start_) - std_offset_;  // switch to DST, given in standard time
  const int64_t end = local_switch(end_) - dst_offset_;      // back, given in daylight time
  const bool dst = start < end ? (utc_s >= start && utc_s < end) : !(utc_s >= end && utc_s < start);
  return dst ? dst_offset_ : std_offset_;
}

int TimeZone::OffsetAt(int64_t utc_s) const {
  if (transitions_.empty() || utc_s < transitions_.front())
    return transitions_.empty() && has_rule_ ? RuleOffsetAt(utc_s) : initial_offset_;
  if (utc_s >= transitions_.back() && has_rule_) return RuleOffsetAt(utc_s);
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), utc_s);
  return offsets_[static_cast<size_t>(it - transitions_.begin()) - 1];
}

int64_t TimeZone::ToUtc(int64_t local_s) const {
  const int o1 = OffsetAt(local_s - OffsetAt(local_s));
  const int o2 = OffsetAt(local_s - o1);
  std::optional<int64_t> best;
  for (int o : {o1, o2, OffsetAt(local_s - o1 - 7200), OffsetAt(local_s - o1 + 7200)}) {
    const int64_t u = local_s - o;
    if (OffsetAt(u) == o && (!best || u < *best)) best = u;
  }
  if (best) return *best;
  // A gap: as if the clock had not moved yet (02:30 in a 02:00-03:00 gap is 03:30).
  return local_s - std::min(o1, o2);
}

std::optional<TimeZone> ParseTzif(const std::string& name, const std::string& b, std::string* error) {
  auto bad = [&](const std::string& why) {
    *error = "time zone '" + name + "': damaged zone file (" + why + ")";
    return std::nullopt;
  };
  if (b.size() < 44 || b.compare(0, 4, "TZif") != 0) return bad("no TZif header");
  const char version = b[4];
  auto counts = [&](size_t at, int64_t c[6]) {
    for (int k = 0; k < 6; ++k) c[k] = Be(b, at + 20 + 4 * k, 4);
  };
  int64_t c[6];
  counts(0, c);
  size_t at = 44;
  int time_size = 4;
  auto block_size = [&](const int64_t* n, int ts) {
    return n[3] * ts + n[3] + n[4] * 6 + n[5] + n[2] * (ts + 4) + n[1] + n[0];
  };
  for (int k = 0; k < 6; ++k)
    if (c[k] < 0 || c[k] > 100000) return bad("counts out of range");
  if (version >= '2') {
    at += static_cast<size_t>(block_size(c, 4));
    if (b.size() < at + 44 || b.compare(at, 4, "TZif") != 0) return bad("no second header");
    counts(at, c);
    for (int k = 0; k < 6; ++k)
      if (c[k] < 0 || c[k] > 100000) return bad("counts out of range");
    at += 44;
    time_size = 8;
  }
  const int64_t timecnt = c[3], typecnt = c[4];
  if (typecnt < 1) return bad("no local time type");
  if (b.size() < at + static_cast<size_t>(block_size(c, time_size))) return bad("truncated");
  TimeZone tz;
  tz.name_ = name;
  std::vector<int> type_offsets;
  const size_t types_at = at + static_cast<size_t>(timecnt * time_size + timecnt);
  for (int64_t t = 0; t < typecnt; ++t) type_offsets.push_back(static_cast<int>(Be(b, types_at + t * 6, 4)));
  tz.initial_offset_ = type_offsets[0];
  for (int64_t t = 0; t < timecnt; ++t) {
    const int64_t when = Be(b, at + t * time_size, time_size);
    const int type = static_cast<unsigned char>(b[at + timecnt * time_size + t]);
    if (type >= typecnt) return bad("a transition names no type");
    if (!tz.transitions_.empty() && when <= tz.transitions_.back()) return bad("transitions out of order");
    tz.transitions_.push_back(when);
    tz.offsets_.push_back(type_offsets[type]);
  }
  if (version >= '2') {
    const size_t footer = at + static_cast<size_t>(block_size(c, time_size));
    if (footer < b.size() && b[footer] == '\n') {
      const size_t end = b.find('\n', footer + 1);
      if (end == std::string::npos) return bad("footer not terminated");
      const std::string rule = b.substr(footer + 1, end - footer - 1);
      if (!rule.empty() && !TimeZone::ParseRule(rule, &tz)) return bad("footer rule '" + rule + "'");
    }
  }
  return tz;
}

std::optional<TimeZone> TimeZone::FromTzif(const std::string& name, const std::string& bytes,
                                           std::string* error) {
  return ParseTzif(name, bytes, error);
}

std::optional<TimeZone> TimeZone::Load(const std::string& name, std::string* error,
                                       const std::string& zoneinfo) {
  if (name.empty() || name == "UTC" || name == "Etc/UTC") return Fixed(0, name.empty() ? "UTC" : name);
  const bool safe = name.find("..") == std::string::npos && name[0] != '/' &&
                    std::all_of(name.begin(), name.end(), [](char ch) {
                      return std::isalnum(static_cast<unsigned char>(ch)) || ch == '/' || ch == '_' ||
                             ch == '-' || ch == '+';
                    });
  if (!safe) {
    *error = "time zone '" + name + "' is not a zone name: give an IANA name such as Europe/Berlin or UTC";
    return std::nullopt;
  }
  std::string dir = zoneinfo;
  if (dir.empty())
    dir = std::getenv("TZDIR") && *std::getenv("TZDIR") ? std::getenv("TZDIR") : "/usr/share/zoneinfo";
  std::ifstream in(dir + "/" + name, std::ios::binary);
  if (!in) {
    *error = "unknown time zone '" + name + "' (no " + dir + "/" + name +
             "): give an IANA name such as Europe/Berlin, or install the tzdata package";
    return std::nullopt;
  }
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (bytes.str().size() > (1u << 20)) {
    *error = "time zone '" + name + "': zone file too large";
    return std::nullopt;
  }
  return ParseTzif(name, bytes.str(), error);
}

// ---------------------------------------------------------------- windows

std::optional<std::vector<int>> ParseWeekdays(const std::string& text, std::string* error) {
  static const char* kNames[] = {"sunday",   "monday", "tuesday", "wednesday",
                                 "thursday", "friday", "saturday"};
  auto day = [&](std::string w) -> int {
    for (char& ch : w) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    for (int d = 0; d < 7; ++d) {
      const std::string full = kNames[d];
      if (w == full || (w.size() == 3 && full.compare(0, 3, w) == 0)) return d;
    }
    return -1;
  };
  std::vector<int> out;
  std::stringstream parts(text);
  std::string part;
  while (std::getline(parts, part, ',')) {
    part.erase(0, part.find_first_not_of(' '));
    part.erase(part.find_last_not_of(' ') + 1);
    const size_t dash = part.find('-');
    const int a = day(part.substr(0, dash));
    const int b = dash == std::string::npos ? a : day(part.substr(dash + 1));
    if (a < 0 || b < 0) {
      *error = "'" + part + "' is not a weekday: give names such as mon, tue or ranges such as mon-fri";
      return std::nullopt;
    }
    for (int d = a;; d = (d + 1) % 7) {
      if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
      if (d == b) break;
    }
  }
  if (out.empty()) {
    *error = "no weekday given: give names such as mon, tue or ranges such as mon-fri";
    return std::nullopt;
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<int> ParseClock(const std::string& text, std::string* error) {
  int h = -1, m = -1;
  char extra = 0;
  if (text.size() != 5 || std::sscanf(text.c_str(), "%2d:%2d%c", &h, &m, &extra) != 2 || h < 0 || h > 23 ||
      m < 0 || m > 59) {
    *error = "start '" + text + "' is not a time of day: give HH:MM (00:00 to 23:59)";
    return std::nullopt;
  }
  return h * 60 + m;
}

std::vector<std::string> ValidateWindow(const MaintenanceWindow& w) {
  std::vector<std::string> out;
  for (int d : w.weekdays)
    if (d < 0 || d > 6) out.push_back("weekday " + std::to_string(d) + " is not 0 (Sunday) to 6 (Saturday)");
  if (w.start_minute < 0 || w.start_minute >= 1440) out.push_back("start is not a time of day");
  if (w.duration_s <= 0 || w.duration_s > 7 * kDay)
    out.push_back("duration must be more than 0 and at most 7 days");
  for (const std::string& d : w.excluded_dates) {
    int y = 0, m = 0, day = 0;
    char extra = 0;
    if (d.size() != 10 || std::sscanf(d.c_str(), "%4d-%2d-%2d%c", &y, &m, &day, &extra) != 3 || m < 1 ||
        m > 12 || day < 1 || day > MonthDays(y, m))
      out.push_back("excluded date '" + d + "' is not a date: give YYYY-MM-DD");
  }
  return out;
}

namespace {

// The window opening on local day `day`, if the window opens that day.
std::optional<WindowSpan> WindowOn(const MaintenanceWindow& w, const TimeZone& tz, int64_t day) {
  if (!w.weekdays.empty() &&
      std::find(w.weekdays.begin(), w.weekdays.end(), Weekday(day)) == w.weekdays.end())
    return std::nullopt;
  if (!w.excluded_dates.empty() &&
      std::find(w.excluded_dates.begin(), w.excluded_dates.end(), DateText(day)) != w.excluded_dates.end())
    return std::nullopt;
  const int64_t start = tz.ToUtc(day * kDay + w.start_minute * 60LL);
  return WindowSpan{start, start + w.duration_s};
}

}  // namespace

std::optional<WindowSpan> OpenWindow(const MaintenanceWindow& w, const TimeZone& tz, int64_t utc_s) {
  const int64_t today = FloorDiv(utc_s + tz.OffsetAt(utc_s), kDay);
  const int64_t back = w.duration_s / kDay + 2;
  for (int64_t day = today - back; day <= today + 1; ++day) {
    auto span = WindowOn(w, tz, day);
    if (span && span->start_s <= utc_s && utc_s < span->end_s) return span;
  }
  return std::nullopt;
}

std::optional<WindowSpan> NextWindow(const MaintenanceWindow& w, const TimeZone& tz, int64_t utc_s) {
  if (auto open = OpenWindow(w, tz, utc_s)) return open;
  const int64_t today = FloorDiv(utc_s + tz.OffsetAt(utc_s), kDay);
  for (int64_t day = today - 1; day <= today + 400; ++day) {
    auto span = WindowOn(w, tz, day);
    if (span && span->start_s > utc_s) return span;
  }
  return std::nullopt;
}

std::string LocalTimeText(const TimeZone& tz, int64_t utc_s) {
  auto two = [](int n) { return std::string(1, static_cast<char>('0' + n / 10)) + static_cast<char>('0' + n % 10); };
  const int offset = tz.OffsetAt(utc_s);
  const time_t local = static_cast<time_t>(utc_s + offset);
  struct tm t {};
  gmtime_r(&local, &t);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &t);
  std::string out = std::string(buf) + " " + (tz.name().empty() ? "UTC" : tz.name());
  if (tz.name() != "UTC" && !tz.name().empty()) {
    const int a = offset < 0 ? -offset : offset;
    out += std::string(" (UTC") + (offset < 0 ? "-" : "+") + two(a / 3600) + ":" + two(a / 60 % 60) + ")";
  }
  return out;
}

WindowDecision DecideWindow(const MaintenanceWindow& w, const TimeZone& tz, int64_t now_s) {
  WindowDecision d;
  if (OpenWindow(w, tz, now_s)) {
    d.open = true;
    return d;
  }
  auto next = NextWindow(w, tz, now_s);
  d.next = next ? "next opens " + LocalTimeText(tz, next->start_s) : "it does not open in the next 400 days";
  return d;
}

bool WindowsIgnoredByEnvironment() {
  const char* v = std::getenv("PLINTH_IGNORE_WINDOWS");
  return v && std::string(v) == "1";
}

nlohmann::json NamedWindowJson(const NamedWindow& w) {
  return {{"name", w.name},
          {"weekdays", w.window.weekdays},
          {"start_minute", w.window.start_minute},
          {"duration_s", w.window.duration_s},
          {"exclude", w.window.excluded_dates},
          {"timezone", w.timezone}};
}

NamedWindow NamedWindowFromJson(const nlohmann::json& j) {
  NamedWindow w;
  if (!j.is_object()) return w;
  w.name = j.value("name", "");
  w.window.weekdays = j.value("weekdays", std::vector<int>{});
  w.window.start_minute = j.value("start_minute", 0);
  w.window.duration_s = j.value("duration_s", int64_t{3600});
  w.window.excluded_dates = j.value("exclude", std::vector<std::string>{});
  w.timezone = j.value("timezone", "UTC");
  return w;
}

std::optional<WindowDecision> DecideNamedWindow(const NamedWindow& w, int64_t now_s, std::string* error) {
  if (WindowsIgnoredByEnvironment()) return WindowDecision{true, ""};
  auto zone = TimeZone::Load(w.timezone, error);
  if (!zone) return std::nullopt;
  return DecideWindow(w.window, *zone, now_s);
}

}  // namespace plinth::controller
