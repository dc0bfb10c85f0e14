#include "stages/route/route_stage.h"

#include <gtest/gtest.h>

#include "router/router.h"
#include "tests/stages/stage_test_util.h"

namespace messplus::stages::route {
namespace {

using pipeline::DecisionMsg;
using pipeline::Features;
using pipeline::SnapshotRequest;
using pipeline::StateSnapshot;
using pipeline::StateUpdate;
using pipeline::UpdateKind;
using testing::StageFixture;

Features MakeFeatures(const std::string& id, const std::string& tenant = "gold") {
  Features f;
  f.request.id = id;
  f.request.text = "text";
  f.request.tenant = tenant;
  f.request.task = "arc";
  f.dim = 4096;
  f.features.push_back(5, 1.0f);
  return f;
}

// A collector's view: a router that records events, and the updates it would publish.
struct Collector {
  explicit Collector(const pipeline::Config& config)
      : router(router::Router::Create(config.router).value()) {}

  // `cost_of(model)` gives each call's cost; a constant by default.
  StateUpdate Outcome(const router::Decision& d, double cost,
                      double (*cost_of)(uint32_t) = nullptr) {
    StateUpdate u;
    u.epoch = epoch;
    u.seq = ++seq;
    u.kind = UpdateKind::kOutcome;
    u.decision = d;
    for (uint32_t m : d.run) u.costs.push_back({m, cost_of ? cost_of(m) : cost});
    EXPECT_TRUE(router->RecordCosts(d, u.costs).ok());
    return u;
  }
  StateUpdate Label(const router::Decision& d, const router::SparseFeatures& x, double s) {
    StateUpdate u;
    u.epoch = epoch;
    u.seq = ++seq;
    u.kind = UpdateKind::kFeedback;
    u.decision = d;
    u.labels = {{d.served, s}};
    u.dim = 4096;
    u.features = x;
    EXPECT_TRUE(router->RecordFeedback(d, x, u.labels).ok());
    return u;
  }
  StateSnapshot Snapshot(uint64_t nonce) {
    return StateSnapshot{nonce, epoch, seq, router->SaveState()};
  }

  std::unique_ptr<router::Router> router;
  uint64_t epoch = 42;
  uint64_t seq = 0;
};

// Starts a replica and syncs it with `c`.
std::unique_ptr<RouteStage> SyncedReplica(StageFixture& f, Collector& c) {
  auto stage = RouteStage::Create(f.ctx, 0).value();
  f.Advance(*stage, std::chrono::milliseconds(1));  // asks for a snapshot
  auto requests = f.out.Of<SnapshotRequest>(RouteStage::kSnapshots);
  EXPECT_EQ(requests.size(), 1u);
  f.Deliver(*stage, RouteStage::kSnapshots, c.Snapshot(requests.back().nonce));
  EXPECT_TRUE(stage->synced());
  f.out.Clear();
  return stage;
}

// A replica that lost sync asks for a snapshot on its next tick; `c` answers it. True when
// exactly one request went out and the replica is synced again.
bool Resnapshot(StageFixture& f, RouteStage& stage, Collector& c) {
  f.Advance(stage, std::chrono::milliseconds(1));
  auto requests = f.out.Of<SnapshotRequest>(RouteStage::kSnapshots);
  if (requests.size() != 1u) return false;
  f.Deliver(stage, RouteStage::kSnapshots, c.Snapshot(requests[0].nonce));
  return stage.synced();
}

// Replica `a` (of fixture fa) and replica `b` (of fb) each decide request `id`; their
// decisions.
std::pair<router::Decision, router::Decision> BothDecide(StageFixture& fa, RouteStage& a,
                                                         StageFixture& fb, RouteStage& b,
                                                         const std::string& id) {
  fa.Deliver(a, RouteStage::kFeatures, MakeFeatures(id));
  fb.Deliver(b, RouteStage::kFeatures, MakeFeatures(id));
  return {fa.out.Of<DecisionMsg>(RouteStage::kDecisions).back().decision,
          fb.out.Of<DecisionMsg>(RouteStage::kDecisions).back().decision};
}

TEST(RouteStage, DecidesWithoutWaitingForTheFirstSnapshot) {
  StageFixture f("route");
  auto stage = RouteStage::Create(f.ctx, 0).value();
  EXPECT_FALSE(stage->synced());
  EXPECT_FALSE(stage->Accepting(RouteStage::kUpdates));  // updates queue meanwhile
  f.Deliver(*stage, RouteStage::kFeatures, MakeFeatures("r1"));
  auto decisions = f.out.Of<DecisionMsg>(RouteStage::kDecisions);
  ASSERT_EQ(decisions.size(), 1u);
  EXPECT_EQ(decisions[0].request.id, "r1");
  EXPECT_EQ(decisions[0].decision.t, 1u);
  EXPECT_EQ(decisions[0].features.size(), 1u);
}

TEST(RouteStage, LoadsTheSnapshotThenAppliesUpdatesInOrder) {
  StageFixture f("route");
  Collector c(f.config);
  auto stage = SyncedReplica(f, c);
  f.Deliver(*stage, RouteStage::kFeatures, MakeFeatures("r1"));
  const router::Decision d = f.out.Of<DecisionMsg>(RouteStage::kDecisions)[0].decision;
  router::SparseFeatures x;
  x.push_back(5, 1.0f);
  f.Deliver(*stage, RouteStage::kUpdates, c.Outcome(d, 100.0));
  f.Deliver(*stage, RouteStage::kUpdates, c.Label(d, x, 1.0));
  EXPECT_EQ(stage->seq(), 2u);
  // The replica's learning state is the collector's.
  EXPECT_EQ(stage->router().policy().queue(0).q_tracked(), c.router->policy().queue(0).q_tracked());
  EXPECT_TRUE(stage->router().policy().predictor() == c.router->policy().predictor());
  EXPECT_EQ(stage->router().policy().costs().Estimate(d.served),
            c.router->policy().costs().Estimate(d.served));
}

TEST(RouteStage, OldUpdatesAreDroppedAndAGapResyncs) {
  StageFixture f("route");
  Collector c(f.config);
  StageFixture g("route");  // another replica makes the decision the updates are about
  auto other = RouteStage::Create(g.ctx, 0).value();
  g.Deliver(*other, RouteStage::kFeatures, MakeFeatures("x"));
  const router::Decision d = g.out.Of<DecisionMsg>(RouteStage::kDecisions)[0].decision;
  const StateUpdate u1 = c.Outcome(d, 10.0);  // in the snapshot below
  auto stage = SyncedReplica(f, c);
  f.Deliver(*stage, RouteStage::kUpdates, u1);
  EXPECT_EQ(stage->seq(), 1u);
  EXPECT_EQ(stage->router().policy().costs().observations(d.served), 1u);  // not twice
  c.Outcome(d, 10.0);                                                      // seq 2: lost on the way
  f.Deliver(*stage, RouteStage::kUpdates, c.Outcome(d, 10.0));             // seq 3: a gap
  EXPECT_FALSE(stage->synced());
  EXPECT_TRUE(Resnapshot(f, *stage, c));
  EXPECT_EQ(stage->seq(), 3u);
  EXPECT_EQ(stage->router().policy().costs().observations(d.served), 3u);
}

TEST(RouteStage, ARequestWhoseOutcomeUpdateWasLostDoesNotStayInFlight) {
  // This replica decides r1 and counts it in flight until its outcome update comes back. That
  // update is lost (the gap): the snapshot it resyncs from holds the outcome, and no update
  // will ever clear r1. Before the fix r1 counted in the queue for good, and a lockstep
  // replay that hit the gap stopped reproducing the simulator. No dither and no exploration,
  // so that a replica's earlier draws do not move its next decision's Q.
  const std::string no_draws = "adaptive: {queue_dither: 0, explore_rate: 0}\n";
  StageFixture f("route", no_draws);
  Collector c(f.config);
  auto stage = SyncedReplica(f, c);
  f.Deliver(*stage, RouteStage::kFeatures, MakeFeatures("r1"));
  const router::Decision d = f.out.Of<DecisionMsg>(RouteStage::kDecisions)[0].decision;
  EXPECT_EQ(stage->router().inflight(), 1u);
  router::SparseFeatures x;
  x.push_back(5, 1.0f);
  c.Outcome(d, 100.0);                                          // seq 1: lost
  f.Deliver(*stage, RouteStage::kUpdates, c.Label(d, x, 1.0));  // seq 2: a gap
  ASSERT_FALSE(stage->synced());
  ASSERT_TRUE(Resnapshot(f, *stage, c));
  EXPECT_EQ(stage->router().inflight(), 0u);
  EXPECT_EQ(stage->router().counters().inflight_forgotten, 1u);
  // The next decision sees the collector's queue and nothing in flight: the same Q as a
  // router that only learned (a fresh replica loading the same snapshot).
  StageFixture g("route", no_draws);
  auto fresh = SyncedReplica(g, c);
  const auto [a, b] = BothDecide(f, *stage, g, *fresh, "r2");
  EXPECT_EQ(a.q, b.q);
  EXPECT_EQ(a.p, b.p);
}

TEST(RouteStage, ReplicaThatLoadedASnapshotDecidesLikeOneThatFollowedTheUpdates) {
  StageFixture f("route");
  Collector c(f.config);
  auto follower = SyncedReplica(f, c);  // synced at seq 0, then applies every update
  StageFixture g("route");
  StageFixture maker("route");
  auto decider = RouteStage::Create(maker.ctx, 0).value();
  router::SparseFeatures x;
  x.push_back(5, 1.0f);
  // 40 requests whose costs run against the zoo's order (the "small" model is the dearest),
  // so the cost order the policy derives differs from the configured one.
  for (int i = 0; i < 40; ++i) {
    std::string id = "r";  // not "r" + to_string(i): g++ 12 -O3 warns (false -Wrestrict)
    id += std::to_string(i);
    maker.Deliver(*decider, RouteStage::kFeatures, MakeFeatures(id));
    const router::Decision d = maker.out.Of<DecisionMsg>(RouteStage::kDecisions).back().decision;
    f.Deliver(*follower, RouteStage::kUpdates,
              c.Outcome(d, 0.0, [](uint32_t m) { return m == 0 ? 3000.0 : 10.0 * (m + 1); }));
    f.Deliver(*follower, RouteStage::kUpdates, c.Label(d, x, i % 3 == 0 ? 0.0 : 1.0));
  }
  ASSERT_EQ(follower->seq(), c.seq);
  // A second replica joins now, from a snapshot.
  auto joiner = RouteStage::Create(g.ctx, 0).value();
  g.Advance(*joiner, std::chrono::milliseconds(1));
  g.Deliver(*joiner, RouteStage::kSnapshots,
            c.Snapshot(g.out.Of<SnapshotRequest>(RouteStage::kSnapshots).back().nonce));
  ASSERT_TRUE(joiner->synced());
  const auto [a, b] = BothDecide(f, *follower, g, *joiner, "next");
  EXPECT_EQ(a.p, b.p);
  EXPECT_EQ(a.cost_estimate, b.cost_estimate);
}

TEST(RouteStage, AnotherEpochResyncs) {
  StageFixture f("route");
  Collector c(f.config);
  auto stage = SyncedReplica(f, c);
  StateUpdate hb;
  hb.epoch = c.epoch + 1;  // the collector restarted
  hb.seq = 0;
  hb.kind = UpdateKind::kHeartbeat;
  f.Deliver(*stage, RouteStage::kUpdates, hb);
  EXPECT_FALSE(stage->synced());
}

TEST(RouteStage, HeartbeatAheadOfUsMeansALostUpdate) {
  StageFixture f("route");
  Collector c(f.config);
  auto stage = SyncedReplica(f, c);
  StateUpdate hb;
  hb.epoch = c.epoch;
  hb.seq = 0;
  hb.kind = UpdateKind::kHeartbeat;
  f.Deliver(*stage, RouteStage::kUpdates, hb);
  EXPECT_TRUE(stage->synced());
  hb.seq = 1;
  f.Deliver(*stage, RouteStage::kUpdates, hb);
  EXPECT_FALSE(stage->synced());
}

TEST(RouteStage, SnapshotForAnOlderRequestIsIgnored) {
  StageFixture f("route", "route: {snapshot_timeout_ms: 100}\n");
  Collector c(f.config);
  auto stage = RouteStage::Create(f.ctx, 0).value();
  f.Advance(*stage, std::chrono::milliseconds(1));
  f.Advance(*stage, std::chrono::milliseconds(101));  // timed out: asks again
  auto requests = f.out.Of<SnapshotRequest>(RouteStage::kSnapshots);
  ASSERT_EQ(requests.size(), 2u);
  f.Deliver(*stage, RouteStage::kSnapshots, c.Snapshot(requests[0].nonce));
  EXPECT_FALSE(stage->synced());
  f.Deliver(*stage, RouteStage::kSnapshots, c.Snapshot(requests[1].nonce));
  EXPECT_TRUE(stage->synced());
}

TEST(RouteStage, SilenceFromTheCollectorResyncs) {
  StageFixture f("route", "route: {silence_timeout_ms: 500}\n");
  Collector c(f.config);
  auto stage = SyncedReplica(f, c);
  f.Advance(*stage, std::chrono::milliseconds(501));
  EXPECT_FALSE(stage->synced());
}

TEST(RouteStage, RefusedDecisionIsHeldAndFeaturesPausedUntilSent) {
  StageFixture f("route");
  auto stage = RouteStage::Create(f.ctx, 0).value();
  f.out.set_refuse(true);  // dispatch at its HWM
  f.Deliver(*stage, RouteStage::kFeatures, MakeFeatures("r1"));
  EXPECT_FALSE(stage->Accepting(RouteStage::kFeatures));
  f.out.set_refuse(false);
  f.Advance(*stage, std::chrono::milliseconds(50));
  ASSERT_EQ(f.out.Of<DecisionMsg>(RouteStage::kDecisions).size(), 1u);
  EXPECT_TRUE(stage->Accepting(RouteStage::kFeatures));
}

TEST(RouteStage, RequestWaitsForItsAfterSeqAndKeepsOrder) {
  StageFixture f("route");
  Collector c(f.config);
  auto stage = SyncedReplica(f, c);
  f.Deliver(*stage, RouteStage::kFeatures, MakeFeatures("r1"));
  const router::Decision d = f.out.Of<DecisionMsg>(RouteStage::kDecisions)[0].decision;
  f.out.Clear();
  router::SparseFeatures x;
  x.push_back(5, 1.0f);
  const StateUpdate outcome = c.Outcome(d, 100.0);  // seq 1
  const StateUpdate label = c.Label(d, x, 0.0);     // seq 2: what the ack of r1 reports
  Features r2 = MakeFeatures("r2");
  r2.request.after_seq = 2;
  f.Deliver(*stage, RouteStage::kFeatures, r2);
  f.Deliver(*stage, RouteStage::kFeatures, MakeFeatures("r3"));  // behind r2: waits too
  EXPECT_TRUE(f.out.Of<DecisionMsg>(RouteStage::kDecisions).empty());
  EXPECT_FALSE(stage->Idle());
  f.Deliver(*stage, RouteStage::kUpdates, outcome);
  EXPECT_TRUE(f.out.Of<DecisionMsg>(RouteStage::kDecisions).empty());
  f.Deliver(*stage, RouteStage::kUpdates, label);
  auto decisions = f.out.Of<DecisionMsg>(RouteStage::kDecisions);
  ASSERT_EQ(decisions.size(), 2u);
  EXPECT_EQ(decisions[0].request.id, "r2");
  EXPECT_EQ(decisions[1].request.id, "r3");
  EXPECT_NE(f.metrics->Text().find("stage=\"route\",outcome=\"reached\"} 1"), std::string::npos)
      << f.metrics->Text();
  EXPECT_TRUE(stage->Idle());
}

TEST(RouteStage, AfterSeqNeverReachedIsDecidedAtTheTimeout) {
  StageFixture f("route", "route: {after_seq_timeout_ms: 100}\n");
  Collector c(f.config);
  auto stage = SyncedReplica(f, c);
  Features r1 = MakeFeatures("r1");
  r1.request.after_seq = 7;  // e.g. from a collector that has since restarted
  f.Deliver(*stage, RouteStage::kFeatures, r1);
  f.Advance(*stage, std::chrono::milliseconds(50));
  EXPECT_TRUE(f.out.Of<DecisionMsg>(RouteStage::kDecisions).empty());
  f.Advance(*stage, std::chrono::milliseconds(51));
  ASSERT_EQ(f.out.Of<DecisionMsg>(RouteStage::kDecisions).size(), 1u);
  EXPECT_TRUE(stage->Idle());
  EXPECT_NE(f.metrics->Text().find("stage=\"route\",outcome=\"timeout\"} 1"), std::string::npos)
      << f.metrics->Text();
}

TEST(RouteStage, UnknownTenantIsCountedNotRouted) {
  StageFixture f("route");
  auto stage = RouteStage::Create(f.ctx, 0).value();
  f.Deliver(*stage, RouteStage::kFeatures, MakeFeatures("r1", "platinum"));
  EXPECT_TRUE(f.out.Of<DecisionMsg>(RouteStage::kDecisions).empty());
  EXPECT_EQ(f.metrics->RejectedCount(pipeline::Reason::kUnknownTenant), 1.0);
}

TEST(RouteStage, ReplicasDrawDifferentSequences) {
  StageFixture f0("route"), f1("route");
  auto r0 = RouteStage::Create(f0.ctx, 0).value();
  auto r1 = RouteStage::Create(f1.ctx, 1).value();
  EXPECT_NE(r0->router().config().seed, r1->router().config().seed);
  EXPECT_EQ(r0->router().config().seed, f0.config.router.seed);
}

}  // namespace
}  // namespace messplus::stages::route
