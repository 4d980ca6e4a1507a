// A C++ plugin against the installed SDK (suite sdk): HEALTHD_CHECK_INIT and
// HEALTHD_PLUGIN_DEFINE, built as C++11 to C++20 under
// -Wall -Wextra -Wpedantic -Werror, then run through healthd --test-plugin.
// {"name": "words", "plugin": "cxx", "words": "a b c", "min": 2}: OK while
// "words" holds at least "min" words.
#include <healthd/plugin.h>

#include <cstdlib>
#include <new>
#include <sstream>
#include <string>
#include <vector>

namespace {

const healthd_host_api *api; // valid until unload

struct Words {
	std::vector<std::string> words;
	int64_t min;
};

healthd_status
run(void *state, healthd_report *report)
{
	const Words *w = static_cast<const Words *>(state);
	api->message(report, "%zu words (min %lld)", w->words.size(), (long long)w->min);
	return (int64_t)w->words.size() >= w->min ? HEALTHD_OK : HEALTHD_CRITICAL;
}

void
destroy(void *state)
{
	delete static_cast<Words *>(state);
}

int
instantiate(healthd_host *host, const healthd_host_api *a, const char *name,
            const healthd_options *options, char *err, size_t errlen)
{
	api = a;
	Words *w = new (std::nothrow) Words();
	if (w == nullptr)
		return -1;
	const char *text = a->option(options, "words");
	std::istringstream in(text != nullptr ? text : "");
	for (std::string word; in >> word;)
		w->words.push_back(word);
	healthd_check check = HEALTHD_CHECK_INIT;
	check.name = name;
	check.run = run;
	check.destroy = destroy;
	check.state = w;
	if (a->option_int(options, "min", 1, 0, 1000, &w->min) == 0 &&
	    a->register_check(host, &check, err, errlen) == 0)
		return 0;
	delete w;
	return -1;
}

} // namespace

HEALTHD_PLUGIN_DEFINE("cxx", "1.0", "a C++ plugin", nullptr, instantiate, nullptr);
