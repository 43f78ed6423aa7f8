// Maintenance windows (runtime/controller/maintenance.h): time zones read
// from the system's TZif files (Europe/Berlin and America/New_York around
// their 2026 switches, and after 2037 through the files' POSIX rule),
// windows on weekdays, across midnight, through daylight-saving gaps and
// overlaps, excluded dates; parse errors; damaged and hostile zone files.
#include "runtime/controller/maintenance.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

namespace plinth::controller {
namespace {

// Seconds since the epoch of a UTC date and time.
int64_t Utc(int y, int mo, int d, int h = 0, int mi = 0) {
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  return static_cast<int64_t>(::timegm(&tm));
}

TimeZone Zone(const std::string& name) {
  std::string error;
  auto tz = TimeZone::Load(name, &error);
  if (!tz) ADD_FAILURE() << error;
  return tz ? *tz : TimeZone::Fixed(0);
}

TEST(ControllerMaintenance, ZoneOffsetsFollowTheDatabaseAndItsRule) {
  TimeZone berlin = Zone("Europe/Berlin");
  EXPECT_EQ(berlin.OffsetAt(Utc(2026, 3, 29, 0, 59)), 3600);
  EXPECT_EQ(berlin.OffsetAt(Utc(2026, 3, 29, 1, 0)), 7200);
  EXPECT_EQ(berlin.OffsetAt(Utc(2026, 10, 25, 0, 59)), 7200);
  EXPECT_EQ(berlin.OffsetAt(Utc(2026, 10, 25, 1, 0)), 3600);
  // After the file's last transition (2037): its POSIX rule CET-1CEST,M3.5.0,M10.5.0/3.
  EXPECT_EQ(berlin.OffsetAt(Utc(2045, 1, 15, 12)), 3600);
  EXPECT_EQ(berlin.OffsetAt(Utc(2045, 7, 15, 12)), 7200);
  EXPECT_EQ(berlin.OffsetAt(Utc(2045, 3, 26, 0, 59)), 3600);  // last Sunday of March 2045 is the 26th
  EXPECT_EQ(berlin.OffsetAt(Utc(2045, 3, 26, 1, 0)), 7200);
  TimeZone ny = Zone("America/New_York");
  EXPECT_EQ(ny.OffsetAt(Utc(2026, 3, 8, 6, 59)), -5 * 3600);
  EXPECT_EQ(ny.OffsetAt(Utc(2026, 3, 8, 7, 0)), -4 * 3600);
  EXPECT_EQ(ny.OffsetAt(Utc(2050, 11, 6, 5, 59)), -4 * 3600);  // first Sunday of November 2050 is the 6th
  EXPECT_EQ(ny.OffsetAt(Utc(2050, 11, 6, 6, 0)), -5 * 3600);
  EXPECT_EQ(Zone("UTC").OffsetAt(Utc(2026, 6, 1)), 0);
  EXPECT_EQ(Zone("Asia/Kolkata").OffsetAt(Utc(2026, 6, 1)), 19800);
}

TEST(ControllerMaintenance, WindowsOpenOnTheirDaysInLocalTime) {
  TimeZone berlin = Zone("Europe/Berlin");
  std::string error;
  MaintenanceWindow w;
  w.weekdays = *ParseWeekdays("sat,sun", &error);
  w.start_minute = *ParseClock("02:30", &error);
  w.duration_s = 2 * 3600;
  // Saturday 2026-03-28 02:30 CET = 01:30 UTC.
  auto open = OpenWindow(w, berlin, Utc(2026, 3, 28, 2, 0));
  ASSERT_TRUE(open);
  EXPECT_EQ(open->start_s, Utc(2026, 3, 28, 1, 30));
  EXPECT_EQ(open->end_s, Utc(2026, 3, 28, 3, 30));
  EXPECT_FALSE(OpenWindow(w, berlin, Utc(2026, 3, 28, 3, 30)));
  EXPECT_FALSE(OpenWindow(w, berlin, Utc(2026, 3, 27, 2, 0)));  // a Friday
  // Sunday 2026-03-29: 02:30 does not exist (02:00 -> 03:00): opens at 03:30 CEST = 01:30 UTC.
  auto next = NextWindow(w, berlin, Utc(2026, 3, 28, 3, 30));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->start_s, Utc(2026, 3, 29, 1, 30));
  // Sunday 2026-10-25: 02:30 exists twice (CEST, then CET): the first, 00:30 UTC.
  next = NextWindow(w, berlin, Utc(2026, 10, 24, 12, 0));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->start_s, Utc(2026, 10, 25, 0, 30));
  // A summer Saturday: 02:30 CEST = 00:30 UTC.
  next = NextWindow(w, berlin, Utc(2026, 7, 3, 12, 0));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->start_s, Utc(2026, 7, 4, 0, 30));
}

TEST(ControllerMaintenance, WindowsRunPastMidnightAndSkipExcludedDates) {
  TimeZone ny = Zone("America/New_York");
  std::string error;
  MaintenanceWindow w;
  w.weekdays = *ParseWeekdays("mon", &error);
  w.start_minute = *ParseClock("23:00", &error);
  w.duration_s = 4 * 3600;
  w.excluded_dates = {"2026-12-28"};
  // Monday 2026-12-07 23:00 EST = Tuesday 04:00 UTC; Tuesday 01:00 local (06:00 UTC) is inside.
  auto open = OpenWindow(w, ny, Utc(2026, 12, 8, 6, 0));
  ASSERT_TRUE(open);
  EXPECT_EQ(open->start_s, Utc(2026, 12, 8, 4, 0));
  EXPECT_FALSE(OpenWindow(w, ny, Utc(2026, 12, 8, 8, 0)));
  // The Monday excluded: the next window is a week later.
  auto next = NextWindow(w, ny, Utc(2026, 12, 27, 0, 0));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->start_s, Utc(2027, 1, 5, 4, 0));
  // Every day when no weekday is given.
  MaintenanceWindow daily;
  daily.start_minute = 60;
  EXPECT_TRUE(OpenWindow(daily, TimeZone::Fixed(0), Utc(2026, 5, 13, 1, 30)));
}

TEST(ControllerMaintenance, ParseErrorsSayHowToFixThem) {
  std::string error;
  auto days = ParseWeekdays("mon-fri", &error);
  ASSERT_TRUE(days);
  EXPECT_EQ(*days, (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_EQ(*ParseWeekdays("fri-mon", &error), (std::vector<int>{0, 1, 5, 6}));
  EXPECT_EQ(*ParseWeekdays("Saturday, sun", &error), (std::vector<int>{0, 6}));
  EXPECT_FALSE(ParseWeekdays("funday", &error));
  EXPECT_EQ(error, "'funday' is not a weekday: give names such as mon, tue or ranges such as mon-fri");
  EXPECT_FALSE(ParseClock("25:00", &error));
  EXPECT_EQ(error, "start '25:00' is not a time of day: give HH:MM (00:00 to 23:59)");
  EXPECT_FALSE(ParseClock("2:30", &error));
  MaintenanceWindow w;
  w.duration_s = 0;
  w.excluded_dates = {"2026-02-30"};
  auto errs = ValidateWindow(w);
  ASSERT_EQ(errs.size(), 2u);
  EXPECT_EQ(errs[1], "excluded date '2026-02-30' is not a date: give YYYY-MM-DD");
  EXPECT_FALSE(TimeZone::Load("../../etc/passwd", &error));
  EXPECT_NE(error.find("is not a zone name"), std::string::npos) << error;
  EXPECT_FALSE(TimeZone::Load("Europe/Berln", &error));
  EXPECT_NE(error.find("unknown time zone 'Europe/Berln'"), std::string::npos) << error;
}

TEST(ControllerMaintenance, DamagedZoneFilesAreErrorsNeverCrashes) {
  std::ifstream in("/usr/share/zoneinfo/Europe/Berlin", std::ios::binary);
  ASSERT_TRUE(in);
  std::ostringstream s;
  s << in.rdbuf();
  const std::string good = s.str();
  std::string error;
  EXPECT_FALSE(TimeZone::FromTzif("x", good.substr(0, 60), &error));
  EXPECT_NE(error.find("damaged zone file"), std::string::npos) << error;
  EXPECT_FALSE(TimeZone::FromTzif("x", "not a zone", &error));
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; ++i) {
    std::string bytes = good;
    for (int k = 0; k < 1 + static_cast<int>(rng() % 8); ++k)
      bytes[rng() % bytes.size()] = static_cast<char>(rng());
    if (rng() % 4 == 0) bytes.resize(rng() % bytes.size());
    auto tz = TimeZone::FromTzif("x", bytes, &error);
    if (tz) (void)tz->OffsetAt(Utc(2030, 6, 1));  // whatever it read, it answers
  }
}

}  // namespace
}  // namespace plinth::controller
