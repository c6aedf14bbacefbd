// CuratorDriver runs Apache Curator's recipes for the Go tests'
// cross-language checks. It reads one command per line on stdin and answers
// on stdout with lines the tests wait for:
//
//   lock PATH                 acquire an InterProcessMutex (in the background) -> "locked PATH"
//   unlock PATH               release it                                      -> "unlocked PATH"
//   latch PATH ID             start a LeaderLatch                              -> "leader ID" / "notleader ID"
//   unlatch PATH              close the LeaderLatch                            -> "unlatched PATH"
//   register BASE NAME ID ADDRESS PORT   register a DYNAMIC service instance   -> "registered ID"
//   unregister ID             unregister it                                    -> "unregistered ID"
//   query BASE NAME           list instances: "instance ID ADDRESS PORT ENABLED" lines, then "end"
//   rlock PATH / wlock PATH   acquire InterProcessReadWriteLock's read / write lock -> "rlocked PATH" / "wlocked PATH"
//   runlock PATH / wunlock PATH  release it                                    -> "runlocked PATH" / "wunlocked PATH"
//   lease PATH MAX            acquire an InterProcessSemaphoreV2 lease         -> "leased PATH"
//   unlease PATH              return it                                        -> "unleased PATH"
//   increment PATH            DistributedAtomicLong.increment                  -> "counter PATH VALUE"
//   select PATH ID            start a LeaderSelector; it leads until unselect -> "selected ID", then "deselected ID"
//   unselect PATH             end its turn (it does not requeue)
//   quit                      close everything and exit                        -> "bye"
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.framework.recipes.leader.LeaderSelector;
import org.apache.curator.framework.recipes.leader.LeaderSelectorListenerAdapter;
import org.apache.curator.framework.recipes.locks.InterProcessLock;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.retry.RetryForever;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.UriSpec;

public class CuratorDriver {
    static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        CuratorFramework client = CuratorFrameworkFactory.newClient(args[0], 10000, 10000, new RetryForever(100));
        client.start();
        client.blockUntilConnected();
        Map<String, CountDownLatch> locks = new HashMap<>();
        Map<String, LeaderLatch> latches = new HashMap<>();
        Map<String, LeaderSelector> selectors = new HashMap<>();
        Map<String, ServiceDiscovery<Void>> discoveries = new HashMap<>();
        Map<String, ServiceInstance<Void>> instances = new HashMap<>();
        say("ready");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            String[] f = line.trim().split(" ");
            switch (f[0]) {
                case "lock": {
                    // InterProcessMutex is reentrant per thread: one thread
                    // acquires and releases it.
                    InterProcessMutex m = new InterProcessMutex(client, f[1]);
                    CountDownLatch unlock = new CountDownLatch(1);
                    locks.put(f[1], unlock);
                    new Thread(() -> {
                        try {
                            m.acquire();
                            say("locked " + f[1]);
                            unlock.await();
                            m.release();
                            say("unlocked " + f[1]);
                        } catch (Exception e) {
                            say("error " + e);
                        }
                    }).start();
                    break;
                }
                case "unlock":
                    locks.remove(f[1]).countDown();
                    break;
                case "rlock":
                case "wlock": {
                    InterProcessReadWriteLock rw = new InterProcessReadWriteLock(client, f[1]);
                    InterProcessLock l = f[0].equals("rlock") ? rw.readLock() : rw.writeLock();
                    String tag = f[0].substring(0, 1);
                    CountDownLatch unlock = new CountDownLatch(1);
                    locks.put(tag + f[1], unlock);
                    new Thread(() -> {
                        try {
                            l.acquire();
                            say(tag + "locked " + f[1]);
                            unlock.await();
                            l.release();
                            say(tag + "unlocked " + f[1]);
                        } catch (Exception e) {
                            say("error " + e);
                        }
                    }).start();
                    break;
                }
                case "runlock":
                case "wunlock":
                    locks.remove(f[0].substring(0, 1) + f[1]).countDown();
                    break;
                case "lease": {
                    InterProcessSemaphoreV2 sem = new InterProcessSemaphoreV2(client, f[1], Integer.parseInt(f[2]));
                    CountDownLatch back = new CountDownLatch(1);
                    locks.put("lease" + f[1], back);
                    new Thread(() -> {
                        try {
                            Lease lease = sem.acquire();
                            say("leased " + f[1]);
                            back.await();
                            sem.returnLease(lease);
                            say("unleased " + f[1]);
                        } catch (Exception e) {
                            say("error " + e);
                        }
                    }).start();
                    break;
                }
                case "unlease":
                    locks.remove("lease" + f[1]).countDown();
                    break;
                case "increment": {
                    DistributedAtomicLong counter = new DistributedAtomicLong(client, f[1], new RetryForever(10));
                    AtomicValue<Long> v = counter.increment();
                    say(v.succeeded() ? "counter " + f[1] + " " + v.postValue() : "error increment failed");
                    break;
                }
                case "latch": {
                    LeaderLatch l = new LeaderLatch(client, f[1], f[2]);
                    l.addListener(new LeaderLatchListener() {
                        public void isLeader() { say("leader " + f[2]); }
                        public void notLeader() { say("notleader " + f[2]); }
                    });
                    latches.put(f[1], l);
                    l.start();
                    break;
                }
                case "select": {
                    CountDownLatch end = new CountDownLatch(1);
                    locks.put("select" + f[1], end);
                    LeaderSelector sel = new LeaderSelector(client, f[1], new LeaderSelectorListenerAdapter() {
                        public void takeLeadership(CuratorFramework c) throws Exception {
                            say("selected " + f[2]);
                            end.await();
                            say("deselected " + f[2]);
                        }
                    });
                    sel.setId(f[2]);
                    selectors.put(f[1], sel);
                    sel.start();
                    break;
                }
                case "unselect":
                    locks.remove("select" + f[1]).countDown();
                    break;
                case "unlatch":
                    latches.remove(f[1]).close();
                    say("unlatched " + f[1]);
                    break;
                case "register": {
                    ServiceDiscovery<Void> d = discovery(client, discoveries, f[1]);
                    ServiceInstance<Void> inst = ServiceInstance.<Void>builder()
                            .name(f[2]).id(f[3]).address(f[4]).port(Integer.parseInt(f[5]))
                            .uriSpec(new UriSpec("{scheme}://{address}:{port}")).build();
                    d.registerService(inst);
                    instances.put(f[3], inst);
                    say("registered " + f[3]);
                    break;
                }
                case "unregister": {
                    ServiceInstance<Void> inst = instances.remove(f[1]);
                    for (ServiceDiscovery<Void> d : discoveries.values()) {
                        d.unregisterService(inst);
                    }
                    say("unregistered " + f[1]);
                    break;
                }
                case "query": {
                    ServiceDiscovery<Void> d = discovery(client, discoveries, f[1]);
                    for (ServiceInstance<Void> i : d.queryForInstances(f[2])) {
                        say("instance " + i.getId() + " " + i.getAddress() + " " + i.getPort() + " " + i.isEnabled()
                                + " " + i.getServiceType() + " " + i.buildUriSpec());
                    }
                    say("end");
                    break;
                }
                case "quit":
                    for (LeaderLatch l : latches.values()) l.close();
                    for (LeaderSelector sel : selectors.values()) sel.close();
                    for (ServiceDiscovery<Void> d : discoveries.values()) d.close();
                    client.close();
                    say("bye");
                    return;
                default:
                    say("error unknown command " + f[0]);
            }
        }
    }

    static ServiceDiscovery<Void> discovery(CuratorFramework client, Map<String, ServiceDiscovery<Void>> ds, String base)
            throws Exception {
        ServiceDiscovery<Void> d = ds.get(base);
        if (d == null) {
            d = ServiceDiscoveryBuilder.builder(Void.class).client(client).basePath(base).build();
            d.start();
            ds.put(base, d);
        }
        return d;
    }
}
