#include "simulator/synthetic.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "router/rng.h"

namespace messplus::simulator {
namespace {

// ---------------------------------------------------------------------------------------------
// Vocabulary. Words are lower case; multi-word terms are hyphenated so that one entry is one
// word of the prompt (the length share of the cost counts words).

struct Topic {
  std::string_view name;
  std::span<const std::string_view> words;
};

// Hand-packed: clang-format would put some lists one word per line.
// clang-format off
constexpr std::string_view kAlgebraWords[] = {
    "equation", "polynomial", "variable", "coefficient", "quadratic", "factoring", "matrix",
    "determinant", "eigenvalue", "eigenvector", "vector", "inequality", "exponent", "logarithm",
    "root", "binomial", "fraction", "ratio", "identity", "group", "ring", "homomorphism",
    "isomorphism", "permutation", "sequence", "series", "function", "inverse", "substitution",
    "elimination", "slope", "intercept", "linear-map"};
constexpr std::string_view kChemistryWords[] = {
    "molecule", "atom", "bond", "electron", "orbital", "reaction", "catalyst", "acid", "base",
    "buffer", "titration", "oxidation", "reduction", "isotope", "valence", "covalent", "ionic",
    "polymer", "solvent", "solute", "equilibrium", "enthalpy", "entropy", "molarity", "alkane",
    "benzene", "ester", "chirality", "spectroscopy", "electrolysis", "precipitate", "kinetics",
    "periodic-table", "stoichiometry"};
constexpr std::string_view kHistoryWords[] = {
    "empire", "revolution", "treaty", "dynasty", "monarchy", "republic", "war", "colony",
    "trade-route", "renaissance", "reformation", "feudalism", "crusades", "industrialization",
    "cold-war", "parliament", "constitution", "pharaoh", "senate", "emperor", "rebellion",
    "armistice", "independence", "migration", "plague", "archive", "chronicle", "siege", "alliance",
    "diplomacy", "ottomans", "byzantium", "silk-road"};
constexpr std::string_view kProgrammingWords[] = {
    "function", "compiler", "pointer", "recursion", "loop", "array", "hash-map", "algorithm",
    "complexity", "thread", "mutex", "deadlock", "closure", "lambda", "interface", "class",
    "inheritance", "template", "iterator", "stack", "queue", "heap", "garbage-collector",
    "exception", "debugger", "refactoring", "unit-test", "api", "database", "query", "cache",
    "concurrency", "bytecode"};
constexpr std::string_view kLawWords[] = {
    "contract", "tort", "negligence", "liability", "statute", "precedent", "plaintiff", "defendant",
    "jurisdiction", "appeal", "verdict", "jury", "evidence", "testimony", "copyright", "patent",
    "trademark", "lease", "tenant", "landlord", "warranty", "damages", "injunction", "arbitration",
    "custody", "probate", "will", "trust", "easement", "indemnity", "subpoena", "due-process",
    "habeas-corpus"};
constexpr std::string_view kCookingWords[] = {
    "recipe", "dough", "yeast", "sourdough", "roux", "braise", "saute", "simmer", "marinade",
    "emulsion", "vinaigrette", "knife", "skillet", "oven", "caramelization", "umami", "spice",
    "herb", "stock", "broth", "risotto", "pasta", "custard", "meringue", "pastry", "fermentation",
    "brine", "sear", "grill", "seasoning", "sauce", "glaze", "souffle"};
constexpr std::string_view kGeometryWords[] = {
    "triangle", "circle", "angle", "polygon", "hexagon", "area", "perimeter", "volume", "radius",
    "diameter", "tangent", "chord", "arc", "congruence", "similarity", "hypotenuse", "pythagoras",
    "sphere", "cone", "cylinder", "prism", "symmetry", "rotation", "reflection", "coordinate",
    "parallel", "perpendicular", "vertex", "polyhedron", "manifold", "curvature", "geodesic",
    "tessellation"};
constexpr std::string_view kBiologyWords[] = {
    "cell", "gene", "protein", "enzyme", "mitochondria", "membrane", "dna", "rna", "mutation",
    "evolution", "species", "ecosystem", "photosynthesis", "respiration", "chromosome", "allele",
    "heredity", "bacteria", "virus", "antibody", "neuron", "hormone", "tissue", "organism",
    "metabolism", "ribosome", "transcription", "translation", "genome", "predator", "symbiosis",
    "immune-system", "meiosis"};
constexpr std::string_view kAstronomyWords[] = {
    "star", "planet", "galaxy", "nebula", "supernova", "black-hole", "telescope", "orbit", "comet",
    "asteroid", "moon", "eclipse", "constellation", "redshift", "parallax", "exoplanet", "pulsar",
    "quasar", "cosmology", "dark-matter", "gravity", "solar-wind", "light-year", "magnitude",
    "spectrum", "neutron-star", "white-dwarf", "big-bang", "meteor", "satellite", "accretion-disk",
    "dwarf-planet", "equinox"};
constexpr std::string_view kEconomicsWords[] = {
    "inflation", "interest-rate", "supply", "demand", "market", "price", "elasticity", "monopoly",
    "oligopoly", "tariff", "trade", "gdp", "recession", "unemployment", "tax", "subsidy", "budget",
    "deficit", "currency", "exchange-rate", "bond-yield", "stock", "dividend", "utility",
    "externality", "equilibrium", "central-bank", "monetary-policy", "fiscal-policy", "wage",
    "productivity", "consumption", "savings"};
constexpr std::string_view kPoetryWords[] = {
    "sonnet", "haiku", "stanza", "verse", "rhyme", "meter", "iambic", "pentameter", "metaphor",
    "simile", "imagery", "alliteration", "couplet", "ode", "elegy", "ballad", "free-verse",
    "enjambment", "caesura", "refrain", "villanelle", "limerick", "epic", "narrator", "tone",
    "symbolism", "allegory", "lyric", "quatrain", "assonance", "persona", "volta", "anapest"};
constexpr std::string_view kMusicWords[] = {
    "melody", "harmony", "rhythm", "tempo", "chord", "scale", "key", "interval", "octave",
    "symphony", "concerto", "sonata", "fugue", "counterpoint", "cadence", "modulation",
    "syncopation", "timbre", "orchestra", "piano", "violin", "guitar", "drum", "jazz",
    "improvisation", "notation", "staff", "clef", "arpeggio", "dynamics", "crescendo", "overture",
    "opera"};
// clang-format on

// The order decides which topics a smaller num_topics keeps: the first six are deliberately
// far apart (maths, science, humanities, code, law, craft) so the default zoo is varied.
constexpr std::array<Topic, 12> kTopics = {{
    {"algebra", kAlgebraWords},
    {"chemistry", kChemistryWords},
    {"history", kHistoryWords},
    {"programming", kProgrammingWords},
    {"law", kLawWords},
    {"cooking", kCookingWords},
    {"geometry", kGeometryWords},
    {"biology", kBiologyWords},
    {"astronomy", kAstronomyWords},
    {"economics", kEconomicsWords},
    {"poetry", kPoetryWords},
    {"music", kMusicWords},
}};

// A difficulty level: its value on the ability scale, the marker words that announce it and
// phrasings typical of it. The markers of different levels are disjoint and a prompt's main
// marker is always of its own level, so the words carry the level (up to the occasional
// off-by-one second marker, see kMarkerNoise); where they appear in the prompt varies.
struct Level {
  double difficulty;
  std::span<const std::string_view> markers;
  std::span<const std::string_view> phrases;
};

constexpr std::string_view kMarkers0[] = {"basic",      "simple",       "easy",
                                          "elementary", "introductory", "beginner"};
constexpr std::string_view kMarkers1[] = {"standard", "common",   "typical",
                                          "textbook", "familiar", "routine"};
constexpr std::string_view kMarkers2[] = {"intermediate", "nontrivial", "multi-step",
                                          "applied",      "detailed",   "tricky"};
constexpr std::string_view kMarkers3[] = {"advanced",       "complex",   "subtle",
                                          "graduate-level", "technical", "demanding"};
constexpr std::string_view kMarkers4[] = {"research-level", "unsolved",   "cutting-edge",
                                          "frontier",       "open-ended", "novel"};
constexpr std::string_view kPhrases0[] = {"in simple terms", "for a beginner", "just the basics",
                                          "in one sentence", "like I am five"};
constexpr std::string_view kPhrases1[] = {"for a student", "step by step", "with a short example",
                                          "in plain words", "for my homework"};
constexpr std::string_view kPhrases2[] = {"in some detail", "with a worked example",
                                          "for a practitioner", "with the main tradeoffs",
                                          "showing the reasoning"};
constexpr std::string_view kPhrases3[] = {"in depth", "with a careful derivation", "for an expert",
                                          "covering the edge cases", "with formal justification"};
constexpr std::string_view kPhrases4[] = {"at the level of a paper", "including open problems",
                                          "with a rigorous proof", "citing recent literature",
                                          "from first principles"};

// Five levels one unit apart on the ability scale, from well below the cheapest model's
// ability (nearly every model succeeds) to above the largest's (even it often fails). With
// the abilities below and the default sharpness this gives mean accuracies of about
// 0.48 / 0.70 / 0.88 for three models.
constexpr std::array<Level, 5> kLevels = {{
    {-1.5, kMarkers0, kPhrases0},
    {-0.5, kMarkers1, kPhrases1},
    {0.5, kMarkers2, kPhrases2},
    {1.5, kMarkers3, kPhrases3},
    {2.5, kMarkers4, kPhrases4},
}};

// Level-neutral question openings, relations and filler: they carry neither topic nor level,
// so a text model has to find the informative words among them.
constexpr std::string_view kOpeners[] = {"what is",
                                         "how does",
                                         "why does",
                                         "how would you explain",
                                         "can you explain",
                                         "explain",
                                         "describe",
                                         "tell me about",
                                         "what do you know about",
                                         "how do I understand",
                                         "compare",
                                         "could you walk me through",
                                         "what should I know about",
                                         "help me with"};
constexpr std::string_view kRelations[] = {"relationship", "difference", "link",
                                           "connection",   "tradeoff",   "interaction"};
constexpr std::string_view kQuestionNouns[] = {"question", "problem", "exercise", "puzzle",
                                               "topic"};
constexpr std::string_view kFillers[] = {"in practice",  "for my class", "for a project", "at work",
                                         "in this case", "for example",  "if possible",   "please",
                                         "in general",   "for an exam"};

// Prompt length in words: the target is drawn from [kMinWords, kMinWords + span) with a span
// that grows with the level (harder questions tend to be longer), capped at kMaxWords.
constexpr int kMinWords = 8;
constexpr int kMaxWords = 40;
constexpr int kLengthSpanBase = 17;
constexpr int kLengthSpanPerLevel = 4;
static_assert(kMinWords + kLengthSpanBase + kLengthSpanPerLevel * 4 - 1 <= kMaxWords);

// Chance that a prompt carries a level phrasing, and that it carries a second marker word;
// the second marker is from an adjacent level with kMarkerNoise, so the level words are
// informative but not a clean label.
constexpr double kPhraseProbability = 0.75;
constexpr double kSecondMarkerProbability = 0.5;
constexpr double kMarkerNoise = 0.2;
// Share of topic chunks that are level-neutral filler phrases instead.
constexpr double kFillerProbability = 0.25;

// ---------------------------------------------------------------------------------------------
// Models.

// Sizes to name the models by; a zoo of n models takes n of them spread evenly, so three
// models are 1b / 8b / 70b like the Llama 3 zoo of the MESS+ paper. All eleven are distinct.
constexpr std::array<std::string_view, 11> kSizes = {"1b",  "2b",  "3b",  "4b",  "7b", "8b",
                                                     "13b", "14b", "27b", "32b", "70b"};

// Abilities rise evenly from the cheapest to the largest model; see kLevels for what this
// range gives.
constexpr double kMinAbility = 0.4;
constexpr double kMaxAbility = 2.8;
// Std of a model's per-topic skill offset: large enough that the cheapest adequate model
// differs between topics, small against the ability gap of a three-model zoo (1.2).
constexpr double kSkillStd = 0.4;
// Share of a row's per-model outcome draws that reuse one uniform shared by the row. Each
// model's success probability stays the sigmoid of the header, but outcomes correlate across
// models (a prompt one model fails is likelier failed by the others) as they do in real
// captures, so the oracle's advantage over the best single model is not inflated.
constexpr double kSharedDrawShare = 0.5;

// Per-call cost noise: exp(kCostNoiseStd * N(0,1)), divided by its mean so that the mean cost
// of model i stays base_cost * cost_ratio^i.
constexpr double kCostNoiseStd = 0.15;
// Share of the cost that scales with the prompt's length; the rest is fixed per call. The
// length term is (1 - share) + share * words / mean_words, mean 1 and never below 0.4.
constexpr double kLengthCostShare = 0.6;
// Latency of the cheapest model per call, and the exponent of cost_ratio per model step:
// latency grows a little slower than energy, as in the captured Llama 3 zoo (0.4 s / 2.1 s /
// 5.5 s against 80 J / 390 J / 2000 J).
constexpr double kCheapestLatencyS = 0.4;
constexpr double kLatencyExponent = 0.8;
constexpr double kLatencyNoiseStd = 0.2;

constexpr size_t kMaxRows = 5'000'000;
// Far below any real cost per call, far above the denormals: the noise and length factors
// (>= 0.2) cannot round a cost to zero.
constexpr double kMinBaseCost = 1e-200;

// Independent random streams, so e.g. changing num_models leaves the prompts unchanged.
enum Stream : uint64_t { kSkillStream = 1, kPromptStream = 2, kOutcomeStream = 3, kCostStream = 4 };

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

template <typename T>
const T& Pick(std::span<const T> items, Rng& rng) {
  return items[rng.Below(items.size())];
}

int CountWords(std::string_view s) {
  return 1 + static_cast<int>(std::count(s.begin(), s.end(), ' '));
}

std::string FormatDouble(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

// One prompt under construction: segments (each a run of words) that are shuffled before
// they are joined, so no word class sits at a fixed position.
class PromptBuilder {
 public:
  void Add(std::string segment) {
    words_ += CountWords(segment);
    segments_.push_back(std::move(segment));
  }
  int words() const { return words_; }

  // Joins opener + shuffled segments into "Opener ... last?".
  std::string Finish(std::string_view opener, Rng& rng) {
    rng.Shuffle(segments_.begin(), segments_.end());
    std::string text(opener);
    for (const std::string& s : segments_) {
      text += ' ';
      text += s;
    }
    text[0] = static_cast<char>(text[0] - 'a' + 'A');  // openers start with a lower-case letter
    text += '?';
    return text;
  }

 private:
  std::vector<std::string> segments_;
  int words_ = 0;
};

std::string Cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) {
    if (!out.empty()) out += ' ';
    out += p;
  }
  return out;
}

// A run of topic words with neutral glue or, when allow_filler, sometimes a filler phrase.
std::string TopicChunk(const Topic& topic, bool allow_filler, Rng& rng) {
  if (allow_filler && rng.Bernoulli(kFillerProbability)) {
    return std::string(Pick<std::string_view>(kFillers, rng));
  }
  const std::string_view a = Pick(topic.words, rng);
  const std::string_view b = Pick(topic.words, rng);
  switch (rng.Below(6)) {
    case 0:
      return Cat({"the", Pick<std::string_view>(kRelations, rng), "between", a, "and", b});
    case 1:
      return Cat({a, "and", b});
    case 2:
      return Cat({a, "in", b});
    case 3:
      return Cat({"how", a, "affects", b});
    case 4:
      return Cat({"the role of", a});
    default:
      return Cat({a, "versus", b});
  }
}

// A topic chunk of exactly `words` words (1..3), to fill the last few words of a prompt.
std::string ShortTopicChunk(const Topic& topic, int words, Rng& rng) {
  constexpr std::string_view kGlue2[] = {"about", "and", "with", "for", "regarding"};
  constexpr std::string_view kGlue3[] = {"and", "in", "versus", "or"};
  const std::string_view a = Pick(topic.words, rng);
  if (words <= 1) return std::string(a);
  if (words == 2) return Cat({Pick<std::string_view>(kGlue2, rng), a});
  return Cat({a, Pick<std::string_view>(kGlue3, rng), Pick(topic.words, rng)});
}

// The segment that carries the level's main marker word next to a topic word.
std::string MarkerSegment(std::string_view marker, const Topic& topic, Rng& rng) {
  const std::string_view word = Pick(topic.words, rng);
  switch (rng.Below(4)) {
    case 0:
      return Cat({marker, word});
    case 1:
      return Cat({"the", marker, word});
    case 2:
      return Cat({"this", marker, Pick<std::string_view>(kQuestionNouns, rng), "about", word});
    default:
      return Cat({"my", marker, Pick<std::string_view>(kQuestionNouns, rng), "on", word});
  }
}

// Builds one prompt of `topic` at level `level`: an opener, then in random order a marker
// segment, an optional level phrasing, an optional second marker, and topic chunks up to a
// target length in [kMinWords, kMaxWords].
std::string MakePrompt(const Topic& topic, int level, Rng& rng, int* words) {
  const Level& lv = kLevels[level];
  const int target = kMinWords + static_cast<int>(rng.Below(static_cast<uint64_t>(
                                     kLengthSpanBase + kLengthSpanPerLevel * level)));
  const std::string_view opener = Pick<std::string_view>(kOpeners, rng);

  PromptBuilder b;
  b.Add(MarkerSegment(Pick(lv.markers, rng), topic, rng));
  if (rng.Bernoulli(kPhraseProbability)) b.Add(std::string(Pick(lv.phrases, rng)));
  if (rng.Bernoulli(kSecondMarkerProbability)) {
    int other = level;
    if (rng.Bernoulli(kMarkerNoise)) {
      if (level == 0) {
        other = 1;
      } else if (level == static_cast<int>(kLevels.size()) - 1) {
        other = level - 1;
      } else {
        other = rng.Bernoulli(0.5) ? level - 1 : level + 1;
      }
    }
    b.Add(Cat({Pick(kLevels[other].markers, rng), Pick(topic.words, rng)}));
  }
  // With the marker segment's word, every prompt names its topic at least twice.
  b.Add(TopicChunk(topic, /*allow_filler=*/false, rng));

  const int opener_words = CountWords(opener);
  while (opener_words + b.words() < target) {
    std::string chunk = TopicChunk(topic, /*allow_filler=*/true, rng);
    // Land exactly on the target: a chunk that overshoots is replaced by one that fits.
    const int room = target - opener_words - b.words();
    if (CountWords(chunk) > room) chunk = ShortTopicChunk(topic, std::min(room, 3), rng);
    b.Add(std::move(chunk));
  }
  *words = opener_words + b.words();
  return b.Finish(opener, rng);
}

Status Validate(const SyntheticOptions& o) {
  if (o.rows < 1 || o.rows > kMaxRows) {
    return Status::InvalidArgument("synthetic zoo: rows must be in [1, " +
                                   std::to_string(kMaxRows) + "], got " + std::to_string(o.rows));
  }
  if (o.num_models < 2 || o.num_models > static_cast<int>(kSizes.size())) {
    return Status::InvalidArgument("synthetic zoo: num_models must be in [2, " +
                                   std::to_string(kSizes.size()) + "], got " +
                                   std::to_string(o.num_models));
  }
  if (o.num_topics < 1 || o.num_topics > static_cast<int>(kTopics.size())) {
    return Status::InvalidArgument("synthetic zoo: num_topics must be in [1, " +
                                   std::to_string(kTopics.size()) + "], got " +
                                   std::to_string(o.num_topics));
  }
  // The negated comparisons also reject NaN.
  if (!(o.base_cost >= kMinBaseCost) || !std::isfinite(o.base_cost)) {
    return Status::InvalidArgument("synthetic zoo: base_cost must be positive and finite, got " +
                                   FormatDouble(o.base_cost));
  }
  if (!(o.cost_ratio > 1.0) || !std::isfinite(o.cost_ratio)) {
    return Status::InvalidArgument("synthetic zoo: cost_ratio must be > 1 and finite, got " +
                                   FormatDouble(o.cost_ratio));
  }
  // Headroom of 1e6 for the per-call noise and length factors, so no cost overflows.
  if (!std::isfinite(o.base_cost * std::pow(o.cost_ratio, o.num_models - 1) * 1e6)) {
    return Status::InvalidArgument(
        "synthetic zoo: base_cost * cost_ratio^(num_models - 1) is too large");
  }
  if (o.cost_kind != "energy_j" && o.cost_kind != "cost_usd" && o.cost_kind != "latency_s") {
    return Status::InvalidArgument(
        "synthetic zoo: cost_kind must be energy_j, cost_usd or latency_s, got \"" + o.cost_kind +
        "\"");
  }
  if (!(o.sharpness > 0.0) || !std::isfinite(o.sharpness)) {
    return Status::InvalidArgument("synthetic zoo: sharpness must be positive and finite, got " +
                                   FormatDouble(o.sharpness));
  }
  return Status::Ok();
}

// Reorders the model columns by mean cost, cheapest first, ties in index order. The columns
// are in that order by construction in expectation; only a cost_ratio close to 1 with few
// rows lets the noise swap two of them.
void SortModelsByMeanCost(Dataset* data) {
  const size_t m = data->num_models();
  const size_t rows = data->rows();
  std::vector<double> mean(m, 0.0);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t j = 0; j < m; ++j) mean[j] += data->Cost(r, j);
  }
  std::vector<size_t> order(m);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return mean[a] < mean[b]; });
  if (std::is_sorted(order.begin(), order.end())) return;

  auto permute = [&](std::vector<double>* table) {
    if (table->empty()) return;
    std::vector<double> out(table->size());
    for (size_t r = 0; r < rows; ++r) {
      for (size_t j = 0; j < m; ++j) out[r * m + j] = (*table)[r * m + order[j]];
    }
    *table = std::move(out);
  };
  permute(&data->score);
  permute(&data->cost);
  permute(&data->latency_s);
  std::vector<std::string> names(m);
  for (size_t j = 0; j < m; ++j) names[j] = std::move(data->models[order[j]]);
  data->models = std::move(names);
}

}  // namespace

Result<Dataset> GenerateSyntheticZoo(const SyntheticOptions& options) {
  MESSPLUS_RETURN_IF_ERROR(Validate(options));
  const size_t rows = options.rows;
  const size_t num_models = static_cast<size_t>(options.num_models);
  const size_t num_topics = static_cast<size_t>(options.num_topics);

  Dataset data;
  data.cost_kind = options.cost_kind;

  // Models: names spread over kSizes, abilities evenly over [kMinAbility, kMaxAbility].
  std::vector<double> ability(num_models);
  const size_t last_size = kSizes.size() - 1;
  for (size_t i = 0; i < num_models; ++i) {
    // Integer rounding of i * last_size / (num_models - 1), identical on every platform.
    const size_t size_index = (i * last_size * 2 + (num_models - 1)) / (2 * (num_models - 1));
    data.models.push_back("synth-" + std::string(kSizes[size_index]));
    ability[i] = kMinAbility + (kMaxAbility - kMinAbility) * static_cast<double>(i) /
                                   static_cast<double>(num_models - 1);
  }

  // Per-topic skill offsets, centred per model so that ability stays the model's mean over
  // topics (otherwise an unlucky draw could reorder the accuracies of close models).
  Rng skill_rng(Rng::Mix(options.seed, kSkillStream));
  std::vector<double> skill(num_models * num_topics);
  for (size_t i = 0; i < num_models; ++i) {
    double sum = 0.0;
    for (size_t k = 0; k < num_topics; ++k) {
      skill[i * num_topics + k] = kSkillStd * skill_rng.Normal();
      sum += skill[i * num_topics + k];
    }
    if (num_topics > 1) {
      const double mean = sum / static_cast<double>(num_topics);
      for (size_t k = 0; k < num_topics; ++k) skill[i * num_topics + k] -= mean;
    }
  }

  // Prompts first: the cost's length term needs the mean length over all rows.
  Rng prompt_rng(Rng::Mix(options.seed, kPromptStream));
  std::vector<uint8_t> topic_of(rows);
  std::vector<uint8_t> level_of(rows);
  std::vector<int> words_of(rows);
  data.ids.reserve(rows);
  data.prompts.reserve(rows);
  data.tasks.reserve(rows);
  double total_words = 0.0;
  for (size_t r = 0; r < rows; ++r) {
    topic_of[r] = static_cast<uint8_t>(prompt_rng.Below(num_topics));
    level_of[r] = static_cast<uint8_t>(prompt_rng.Below(kLevels.size()));
    const Topic& topic = kTopics[topic_of[r]];
    data.ids.push_back("synth-" + std::to_string(r));
    data.prompts.push_back(MakePrompt(topic, level_of[r], prompt_rng, &words_of[r]));
    data.tasks.emplace_back(topic.name);
    total_words += words_of[r];
  }
  const double mean_words = total_words / static_cast<double>(rows);

  // Outcomes.
  Rng outcome_rng(Rng::Mix(options.seed, kOutcomeStream));
  data.score.resize(rows * num_models);
  for (size_t r = 0; r < rows; ++r) {
    const double d = kLevels[level_of[r]].difficulty;
    const double shared_u = outcome_rng.Uniform();
    for (size_t i = 0; i < num_models; ++i) {
      const double p =
          Sigmoid(options.sharpness * (ability[i] + skill[i * num_topics + topic_of[r]] - d));
      // Both branches draw, so the stream's position does not depend on earlier outcomes.
      const bool shared = outcome_rng.Bernoulli(kSharedDrawShare);
      const double own_u = outcome_rng.Uniform();
      data.score[r * num_models + i] = (shared ? shared_u : own_u) < p ? 1.0 : 0.0;
    }
  }

  // Costs and latencies.
  Rng cost_rng(Rng::Mix(options.seed, kCostStream));
  data.cost.resize(rows * num_models);
  data.latency_s.resize(rows * num_models);
  const double cost_noise_mean_correction = -0.5 * kCostNoiseStd * kCostNoiseStd;
  const double latency_noise_mean_correction = -0.5 * kLatencyNoiseStd * kLatencyNoiseStd;
  std::vector<double> model_cost(num_models);
  std::vector<double> model_latency(num_models);
  for (size_t i = 0; i < num_models; ++i) {
    const double step = static_cast<double>(i);
    model_cost[i] = options.base_cost * std::pow(options.cost_ratio, step);
    model_latency[i] = kCheapestLatencyS * std::pow(options.cost_ratio, kLatencyExponent * step);
  }
  const bool cost_is_latency = options.cost_kind == "latency_s";
  for (size_t r = 0; r < rows; ++r) {
    const double length_term =
        (1.0 - kLengthCostShare) + kLengthCostShare * static_cast<double>(words_of[r]) / mean_words;
    for (size_t i = 0; i < num_models; ++i) {
      const size_t cell = r * num_models + i;
      const double cost_noise =
          std::exp(kCostNoiseStd * cost_rng.Normal() + cost_noise_mean_correction);
      const double latency_noise =
          std::exp(kLatencyNoiseStd * cost_rng.Normal() + latency_noise_mean_correction);
      data.cost[cell] = model_cost[i] * length_term * cost_noise;
      // When the cost column is latency, the two columns are the same measurement.
      data.latency_s[cell] =
          cost_is_latency ? data.cost[cell] : model_latency[i] * length_term * latency_noise;
    }
  }

  SortModelsByMeanCost(&data);
  return data;
}

}  // namespace messplus::simulator
