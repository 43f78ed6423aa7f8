// Maintenance windows (docs/automation.md, "Maintenance windows"): when the
// controller may patch nodes and replicas, as local times in a time zone.
//
// A window opens on each listed weekday at `start` local time, lasts
// `duration`, and is skipped on excluded local dates (the date the window
// would open on). A window may run past midnight (and into a day not
// listed). Local times are read through the IANA time zone database
// (/usr/share/zoneinfo, TZif files; the POSIX rule at the end of a file
// covers times after its last transition): a start that does not exist on a
// day (a daylight-saving gap) is moved later by the gap (02:30 in a
// 02:00-03:00 gap opens at 03:30); one that exists twice opens at the first.
//
// Input: a MaintenanceWindow and a TimeZone. Output: whether a moment is
// inside a window (Open) and the next window (Next). Pure apart from loading
// the zone file.
//
// Thread safety: a TimeZone is immutable after Load; the functions are pure.
#pragma once

#include <cstdint>
#include <optional>

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace plinth::controller {

class TimeZone {
 public:
  // "UTC" (or "") without a file; otherwise <zoneinfo>/<name> (name: letters,
  // digits, '/', '_', '-', '+'; no "..": a name never leaves the database).
  // `zoneinfo` defaults to $TZDIR or /usr/share/zoneinfo. nullopt with
  // *error ("unknown time zone 'Europe/Berln': ...") otherwise.
  static std::optional<TimeZone> Load(const std::string& name, std::string* error,
                                      const std::string& zoneinfo = "");
  // A zone with a fixed offset (tests, "UTC").
  static TimeZone Fixed(int offset_s, std::string name = "UTC");
  // A zone from a TZif file's bytes (tests); nullopt with *error when damaged.
  static std::optional<TimeZone> FromTzif(const std::string& name, const std::string& bytes,
                                          std::string* error);

  const std::string& name() const { return name_; }
  // UTC offset in seconds at a UTC instant (east positive: +3600 for CET).
  int OffsetAt(int64_t utc_s) const;
  // The UTC instant of a local time (seconds since the epoch as if local
  // were UTC), by the rules above (gaps: moved later by the gap; overlaps:
  // the first).
  int64_t ToUtc(int64_t local_s) const;

 private:
  std::string name_;
  std::vector<int64_t> transitions_;  // UTC seconds, ascending
  std::vector<int> offsets_;          // offset in effect from transitions_[i]
  int initial_offset_ = 0;            // before the first transition
  // The footer rule (std/dst offsets and the two yearly switches).
  bool has_rule_ = false;
  int std_offset_ = 0, dst_offset_ = 0;
  bool has_dst_ = false;
  struct When {
    char kind = 'M';  // 'M' month.week.day, 'J' Julian 1..365 (no Feb 29), 'D' zero-based day 0..365
    int month = 0, week = 0, day = 0;
    int time_s = 7200;  // local time of the switch
  } start_{}, end_{};
  friend std::optional<TimeZone> ParseTzif(const std::string&, const std::string&, std::string*);
  static bool ParseRule(const std::string& text, TimeZone* tz);
  int RuleOffsetAt(int64_t utc_s) const;
};

struct MaintenanceWindow {
  std::vector<int> weekdays;                // 0 = Sunday .. 6 = Saturday; empty: every day
  int start_minute = 0;                     // minutes after local midnight, 0..1439
  int64_t duration_s = 3600;                // > 0, at most 7 days
  std::vector<std::string> excluded_dates;  // "YYYY-MM-DD", local
};

// "mon", "Tuesday", "mon-fri", "sat,sun" -> weekday numbers; nullopt with
// *error for anything else.
std::optional<std::vector<int>> ParseWeekdays(const std::string& text, std::string* error);
// "02:30" -> 150; nullopt with *error ("start '25:00' is not a time of day: give HH:MM").
std::optional<int> ParseClock(const std::string& text, std::string* error);
// The problems of a window, one line each; empty when valid.
std::vector<std::string> ValidateWindow(const MaintenanceWindow& w);

struct WindowSpan {
  int64_t start_s = 0, end_s = 0;  // UTC seconds, [start, end)
};
// The window that contains `utc_s`, if any.
std::optional<WindowSpan> OpenWindow(const MaintenanceWindow& w, const TimeZone& tz, int64_t utc_s);
// The window open at `utc_s`, else the next one to open (within 400 days).
std::optional<WindowSpan> NextWindow(const MaintenanceWindow& w, const TimeZone& tz, int64_t utc_s);

// "2026-12-07 02:00 Europe/Berlin (UTC+01:00)"; "2026-12-07 02:00 UTC".
std::string LocalTimeText(const TimeZone& tz, int64_t utc_s);

// Whether a window is open at `now_s` and, when it is not, when it opens:
// "next opens 2026-12-07 02:00 Europe/Berlin (UTC+01:00)", or "it does not
// open in the next 400 days". Packages and services decide by it.
struct WindowDecision {
  bool open = false;
  std::string next;
};
WindowDecision DecideWindow(const MaintenanceWindow& w, const TimeZone& tz, int64_t now_s);

// PLINTH_IGNORE_WINDOWS=1 in the environment: every window counts as open
// (emergencies; never the default).
bool WindowsIgnoredByEnvironment();

// A window as a resource refers to it (`window = maintenance_window.X` of a
// service or a pool's patch block), carried in the specs the controller and
// the node agents read: its settings and its zone's name.
struct NamedWindow {
  std::string name;
  MaintenanceWindow window;
  std::string timezone = "UTC";  // an IANA name (TimeZone::Load)
};
// {"name", "weekdays", "start_minute", "duration_s", "exclude", "timezone"}.
nlohmann::json NamedWindowJson(const NamedWindow& w);
NamedWindow NamedWindowFromJson(const nlohmann::json& j);
// Whether `w` is open at `now_s` (PLINTH_IGNORE_WINDOWS=1: always); nullopt
// with *error when its zone cannot be loaded.
std::optional<WindowDecision> DecideNamedWindow(const NamedWindow& w, int64_t now_s, std::string* error);

}  // namespace plinth::controller
