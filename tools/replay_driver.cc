#include "tools/replay_driver.h"

#include <algorithm>
#include <deque>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "pipeline/client.h"
#include "pipeline/clock.h"
#include "pipeline/runtime.h"
#include "router/router.h"
#include "router/virtual_queue.h"
#include "simulator/baselines.h"

namespace messplus::tools {

using pipeline::ClientReply;
using pipeline::ErrorReply;
using pipeline::Feedback;
using pipeline::FeedbackAck;
using pipeline::Message;
using pipeline::Millis;
using pipeline::Request;
using pipeline::SteadyClock;
using pipeline::TimePoint;

namespace {

// How long one Receive waits; also the granularity of the timeout checks.
constexpr Millis kReceiveSlice{20};

struct Slot {
  TimePoint sent{};
  bool done = false;
  bool ok = false;
  uint32_t served = 0;
  bool explored = false;
  double cost = 0.0;
  double total_cost = 0.0;
  std::vector<uint32_t> models_run;
  std::vector<double> p;  // predicted satisfaction per model; empty when not given
  int attempts = 1;
};

// A request refused as overloaded is sent again (with a doubling back-off) this many times.
constexpr int kMaxAttempts = 20;

}  // namespace

Result<std::string> FetchSnapshotState(const pipeline::Config& config, zmq::context_t& zmq,
                                       Millis timeout, uint64_t* seq) {
  zmq::socket_t socket(zmq, zmq::socket_type::dealer);
  pipeline::ConfigureSocket(socket, 10, config);
  socket.set(zmq::sockopt::linger, 0);
  socket.connect(config.endpoints.snapshots);
  const uint64_t nonce = static_cast<uint64_t>(SteadyClock::now().time_since_epoch().count()) | 1;
  const std::string request = pipeline::EncodeToString(pipeline::SnapshotRequest{nonce});
  if (!socket.send(zmq::buffer(request), zmq::send_flags::dontwait)) {
    return Status::Unavailable("cannot send a snapshot request to " + config.endpoints.snapshots);
  }
  const TimePoint deadline = SteadyClock::now() + timeout;
  zmq::message_t frame;
  pipeline::Limits limits = config.MakeLimits();
  // Bounded by the deadline: each poll waits at most what is left of it.
  while (SteadyClock::now() < deadline) {
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    pipeline::Poll(&item, 1,
                   std::chrono::duration_cast<Millis>(deadline - SteadyClock::now()) + Millis(1));
    if (!(item.revents & ZMQ_POLLIN) || !socket.recv(frame, zmq::recv_flags::dontwait)) continue;
    Result<pipeline::StateSnapshot> s =
        pipeline::DecodeAs<pipeline::StateSnapshot>(frame.to_string_view(), limits);
    if (!s.ok() || s->nonce != nonce) continue;
    if (seq != nullptr) *seq = s->seq;
    return std::move(s->state);
  }
  return Status::Unavailable("no state_snapshot from " + config.endpoints.snapshots + " within " +
                             std::to_string(timeout.count()) + " ms");
}

Result<simulator::ReplayResult> RunPipelineReplay(
    const pipeline::Config& config, zmq::context_t& zmq, const simulator::Dataset& data,
    const PipelineReplayOptions& options, PipelineReplayStats* stats, const pipeline::Logger& log) {
  const std::vector<std::string> zoo = config.ModelNames();
  if (zoo != data.models) {
    auto join = [](const std::vector<std::string>& v) {
      std::string s;
      for (const std::string& x : v) s += (s.empty() ? "" : ", ") + x;
      return s;
    };
    return Status::InvalidArgument("the configured zoo (" + join(zoo) +
                                   ") must be the data's models in cost order (" +
                                   join(data.models) + ")");
  }
  const std::string tenant = options.tenant.empty() ? config.default_tenant : options.tenant;
  double alpha = -1.0;
  uint32_t tenant_index = 0;
  for (uint32_t t = 0; t < config.router.tenants.size(); ++t) {
    if (config.router.tenants[t].name == tenant) {
      alpha = config.router.tenants[t].alpha;
      tenant_index = t;
    }
  }
  if (alpha < 0.0) return Status::InvalidArgument("unknown tenant '" + tenant + "'");
  if (!(options.feedback_rate >= 0.0 && options.feedback_rate <= 1.0)) {
    return Status::InvalidArgument("feedback rate must be in [0, 1]");
  }
  if (options.in_flight == 0) return Status::InvalidArgument("in-flight must be > 0");

  const std::vector<size_t> order =
      simulator::ReplayOrder(data.rows(), options.seed, options.limit);
  const size_t n = order.size();
  if (n == 0) return Status::InvalidArgument("the dataset is empty");
  Rng feedback_rng = simulator::FeedbackRng(options.seed);
  std::vector<uint8_t> wants_feedback(n);
  for (size_t i = 0; i < n; ++i) wants_feedback[i] = feedback_rng.Bernoulli(options.feedback_rate);

  // Request ids: the rows' ids when they are usable (unique, short), else row numbers.
  std::vector<std::string> ids(n);
  std::unordered_map<std::string, size_t> index_of;
  bool use_row_ids = true;
  for (size_t i = 0; i < n && use_row_ids; ++i) {
    const std::string& id = data.ids[order[i]];
    use_row_ids =
        !id.empty() && id.size() <= pipeline::kMaxIdBytes && index_of.emplace(id, i).second;
  }
  if (!use_row_ids) {
    index_of.clear();
    for (size_t i = 0; i < n; ++i) index_of.emplace("row-" + std::to_string(order[i]), i);
  }
  for (const auto& [id, i] : index_of) ids[i] = id;
  auto model_index = [&](const std::string& name) {
    return static_cast<uint32_t>(std::find(zoo.begin(), zoo.end(), name) - zoo.begin());
  };

  pipeline::Client client(zmq, config, config.endpoints.frontend);
  std::vector<Slot> slots(n);
  std::vector<size_t> completion;  // request indices in the order their replies arrived
  completion.reserve(n);
  using Due = std::pair<size_t, size_t>;  // (due: requests sent before it goes, request index)
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> due_feedback;
  std::unordered_map<std::string, TimePoint> awaiting_ack;
  std::deque<size_t> in_flight_order;
  std::vector<std::pair<TimePoint, size_t>> retries;  // (not before, request index)
  size_t sent = 0, done = 0, in_flight = 0;
  const TimePoint start = SteadyClock::now();
  bool heard = false;
  TimePoint next_ack_scan = start;
  *stats = PipelineReplayStats();

  auto send_feedback = [&](size_t i) {
    const Slot& s = slots[i];
    const size_t row = order[i];
    Feedback f;
    f.request_id = ids[i];
    if (s.explored && s.models_run.size() > 1) {
      for (uint32_t m : s.models_run) f.labels.emplace_back(zoo[m], data.Score(row, m));
    } else {
      f.satisfaction = data.Score(row, s.served);
    }
    if (client.Send(f)) {
      ++stats->feedback_sent;
      awaiting_ack[ids[i]] = SteadyClock::now();
    } else {
      ++stats->feedback_unacked;
      log->warn("replay: feedback for {} could not be sent (HWM)", ids[i]);
    }
  };
  Request request;  // reused
  uint64_t last_ack_seq = 0;
  auto make_request = [&](size_t i) -> const Request& {
    const size_t row = order[i];
    request.id = ids[i];
    request.text = data.prompts[row];
    request.tenant = tenant;
    request.task = options.use_task ? data.tasks[row] : std::string();
    // Lockstep: route decides only after applying the last acknowledged feedback.
    request.after_seq = options.lockstep ? last_ack_seq : 0;
    return request;
  };
  auto finish = [&](size_t i) {
    slots[i].done = true;
    --in_flight;
    ++done;
    completion.push_back(i);
  };

  Message message;
  // Bounded: every iteration sends, or waits at most kReceiveSlice; each request ends by
  // its reply or request_timeout, each feedback by its ack or ack_timeout.
  while (done < n || !awaiting_ack.empty()) {
    // Requests refused as overloaded go again first, once their back-off passed (they
    // still count as in flight meanwhile).
    for (auto it = retries.begin(); it != retries.end();) {
      if (it->first > SteadyClock::now()) {
        ++it;
        continue;
      }
      const size_t i = it->second;
      if (!client.Send(make_request(i))) break;
      ++slots[i].attempts;
      it = retries.erase(it);
    }
    const size_t window = options.lockstep ? 1 : options.in_flight;
    while (sent < n && in_flight < window) {
      // Feedback due before request `sent` goes first (the simulator delivers it before
      // that request's decision, after the costs of every earlier request).
      while (!due_feedback.empty() && due_feedback.top().first <= sent) {
        send_feedback(due_feedback.top().second);
        due_feedback.pop();
      }
      if (options.lockstep && !awaiting_ack.empty()) break;
      if (!client.Send(make_request(sent))) break;  // HWM: try again after the next receive
      slots[sent].sent = SteadyClock::now();
      in_flight_order.push_back(sent);
      ++sent;
      ++in_flight;
    }

    Result<bool> got = client.Receive(&message, kReceiveSlice);
    const TimePoint now = SteadyClock::now();
    if (!got.ok()) {
      log->warn("replay: undecodable reply: {}", got.status().message());
    } else if (*got) {
      heard = true;
      if (auto* reply = std::get_if<ClientReply>(&message)) {
        auto it = index_of.find(reply->request_id);
        if (it == index_of.end() || slots[it->second].done) continue;
        const size_t i = it->second;
        Slot& s = slots[i];
        finish(i);
        if (!reply->ok()) {
          ++stats->errors;
          ++stats->error_codes[reply->error_code];
          log->debug("replay: {} failed: {}: {}", reply->request_id, reply->error_code,
                     reply->error_message);
          continue;
        }
        ++stats->answered;
        s.ok = true;
        s.served = model_index(reply->model);
        s.explored = reply->explored;
        s.cost = reply->cost;
        s.total_cost = reply->total_cost;
        for (const std::string& m : reply->models_run) s.models_run.push_back(model_index(m));
        if (!reply->predicted.empty()) {
          s.p.assign(zoo.size(), 0.5);
          for (const auto& [m, p] : reply->predicted) s.p[model_index(m)] = p;
        }
        const size_t due = i + options.feedback_delay;
        if (wants_feedback[i] && due < n) {
          if (sent >= due) {
            send_feedback(i);
          } else {
            due_feedback.push({due, i});
          }
        }
      } else if (auto* ack = std::get_if<FeedbackAck>(&message)) {
        if (awaiting_ack.erase(ack->request_id) == 0) continue;
        last_ack_seq = std::max(last_ack_seq, ack->seq);
        if (ack->ok()) {
          ++stats->feedback_acked;
        } else {
          ++stats->feedback_refused;
          ++stats->ack_codes[ack->status];
        }
      } else if (auto* error = std::get_if<ErrorReply>(&message)) {
        if (error->about == "feedback") {
          if (awaiting_ack.erase(error->request_id) != 0) {
            ++stats->feedback_refused;
            ++stats->ack_codes[error->code];
          }
          continue;
        }
        auto it = index_of.find(error->request_id);
        if (it == index_of.end() || slots[it->second].done) {
          log->warn("replay: error from ingest: {}: {}", error->code, error->message);
          continue;
        }
        Slot& s = slots[it->second];
        if (error->code == pipeline::ReasonName(pipeline::Reason::kOverloaded) &&
            s.attempts < kMaxAttempts && now - s.sent < options.request_timeout) {
          // Refused at the door (in-flight limit, or embed not connected yet): the request
          // never entered the pipeline, so sending it again later counts it once.
          const Millis backoff = std::min(Millis(1000), Millis(20 << std::min(s.attempts, 6)));
          retries.push_back({now + backoff, it->second});
          ++stats->retried;
          continue;
        }
        finish(it->second);
        ++stats->errors;
        ++stats->error_codes[error->code];
      }
    }

    if (!heard && now - start > options.connect_timeout) {
      return Status::Unavailable(
          fmt::format("no answer from ingest at {} within {} ms: is the pipeline running?",
                      config.endpoints.frontend, options.connect_timeout.count()));
    }
    while (!in_flight_order.empty() && slots[in_flight_order.front()].done)
      in_flight_order.pop_front();
    while (!in_flight_order.empty() &&
           now - slots[in_flight_order.front()].sent > options.request_timeout) {
      const size_t i = in_flight_order.front();
      in_flight_order.pop_front();
      if (slots[i].done) continue;
      finish(i);
      ++stats->errors;
      ++stats->error_codes["client_timeout"];
    }
    if (now >= next_ack_scan) {
      next_ack_scan = now + Millis(500);
      for (auto it = awaiting_ack.begin(); it != awaiting_ack.end();) {
        if (now - it->second > options.ack_timeout) {
          ++stats->feedback_unacked;
          it = awaiting_ack.erase(it);
        } else {
          ++it;
        }
      }
    }
  }
  stats->seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();

  // ---- the report, as the simulator builds it ----
  simulator::ReplayResult res;
  const size_t m = zoo.size();
  const double nn = static_cast<double>(n);
  res.seed = options.seed;
  res.policy = config.router.policy;
  res.requests = n;
  res.alpha = alpha;
  res.models = zoo;
  res.model_share.assign(m, 0.0);
  double total_cost = 0.0, unserved = 0.0, sat = 0.0, running = 0.0, q_all = 0.0;
  size_t explored = 0, k = 0;
  for (size_t i : completion) {
    const Slot& s = slots[i];
    ++k;
    double satisfaction = 0.0;  // a failed request satisfied nobody
    if (s.ok) {
      satisfaction = data.Score(order[i], s.served);
      total_cost += s.total_cost;
      unserved += s.total_cost - s.cost;
      res.model_share[s.served] += 1.0;
      explored += s.explored ? 1 : 0;
    }
    sat += satisfaction;
    running += sat / static_cast<double>(k);
    q_all = router::VirtualQueue::Step(q_all, alpha, satisfaction);
  }
  res.avg_cost = total_cost / nn;
  res.avg_satisfaction = sat / nn;
  res.time_avg_satisfaction = running / nn;
  res.sla_met = res.avg_satisfaction >= alpha;
  for (double& share : res.model_share) share /= nn;
  res.exploration_share = static_cast<double>(explored) / nn;
  res.exploration_cost_share = total_cost > 0.0 ? unserved / total_cost : 0.0;
  res.final_q_all = q_all;
  res.feedback_delivered = stats->feedback_acked;

  // Predictor quality from the predictions the replies carried, in stream order.
  std::vector<std::vector<double>> predicted(m);
  std::vector<std::vector<uint8_t>> labels(m);
  std::vector<double> gain;
  std::vector<uint8_t> gain_label;
  for (size_t i = 0; i < n; ++i) {
    if (slots[i].p.size() != m) continue;
    for (size_t j = 0; j < m; ++j) {
      predicted[j].push_back(slots[i].p[j]);
      labels[j].push_back(data.Score(order[i], j) >= 0.5);
    }
    gain.push_back(slots[i].p[m - 1] - slots[i].p[0]);
    gain_label.push_back(data.Score(order[i], m - 1) >= 0.5 && data.Score(order[i], 0) < 0.5);
  }
  double auc = 0.0;
  for (size_t j = 0; j < m; ++j) auc += simulator::Auc(predicted[j], labels[j]);
  res.predictor_auc = auc / static_cast<double>(m);
  res.gain_auc = simulator::Auc(gain, gain_label);

  res.baselines = simulator::ComputeBaselines(data, order, alpha, options.seed);
  res.eg_expected_cost = simulator::EducatedGuessExpectedCost(data, order, alpha);

  uint64_t seq = 0;
  Result<std::string> state = FetchSnapshotState(config, zmq, Millis(5000), &seq);
  Result<std::unique_ptr<router::Router>> r = router::Router::Create(config.router);
  if (state.ok() && r.ok() && (*r)->LoadState(*state).ok()) {
    res.final_q = (*r)->policy().queue(tenant_index).q_tracked();
  } else {
    res.final_q = -1.0;
    res.warnings.push_back("final Q unavailable: " + (state.ok()
                                                          ? std::string("snapshot did not load")
                                                          : state.status().message()));
  }
  if (stats->errors > 0) {
    std::string codes;
    for (const auto& [code, count] : stats->error_codes) {
      codes += (codes.empty() ? "" : ", ") + fmt::format("{} {}", count, code);
    }
    res.warnings.push_back(fmt::format("{} of {} requests failed ({})", stats->errors, n, codes));
  }
  if (stats->feedback_refused + stats->feedback_unacked > 0) {
    res.warnings.push_back(fmt::format("{} feedback refused, {} without an acknowledgement",
                                       stats->feedback_refused, stats->feedback_unacked));
  }
  if (options.seed != config.router.seed) {
    res.warnings.push_back(fmt::format(
        "replay seed {} differs from the router's seed {} in the config: `messplus sim --seed "
        "{}` uses one seed for both",
        options.seed, config.router.seed, options.seed));
  }
  return res;
}

}  // namespace messplus::tools
