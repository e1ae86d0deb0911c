/*! Clicktrail browser tracker (MIT). ES2017, no dependencies, hand-compacted to stay under 3 KB gzipped.
<script src="https://HOST/tracker.js" data-key="ik_..." defer></script>, or clicktrail.init({key}). Options (data-*):
key, api, idle-timeout (ms), batch-size, flush-interval (ms), auto-pageviews, outbound-links, opt-out (function name).
clicktrail.track(name, data) identify(id) start() stop() flush() optOut(bool) setOptOut(fn) */
// prettier-ignore
((w,d,n)=>{
let me=d.currentScript,L=n.locks,J=JSON,C={api:me?new URL(me.src,location.href).origin:"",idleTimeout:18e5,batchSize:20,flushInterval:2e3},
q=[],pre=[],fails=0,F=0,KA=0,g=0,solo=0,P,QK,I,V,O,ls,ss,ready,dead,busy,timer,idleT,ref,last,
get=k=>{try{return J.parse(ls.getItem(k))}catch(e){}},
set=(k,v)=>{try{v==null?ls.removeItem(k):ls.setItem(k,J.stringify(v))}catch(e){}},
iso=t=>new Date(t||Date.now()).toISOString(),
rid=()=>[].map.call(crypto.getRandomValues(new Uint8Array(9)),b=>(b|256).toString(16).slice(1)).join(""),
off=()=>{try{return!!(O||n.doNotTrack==1||w.doNotTrack==1||C.optOut&&C.optOut())}catch(e){return!0}},
// this tab's queue, minus what a keepalive request still carries (x) when the page goes away
save=x=>{let a=x?q.slice(F):q;ready&&set(QK,a[0]?a:null)},
tok=()=>get(P+"t")||{},
forget=s=>{let t=tok();delete t[s];set(P+"t",t)},
body=o=>J.stringify(Object.assign({key:C.key},o)),
url=p=>C.api+"/api/v1"+p,
// a text/plain body (fetch's default for a string) needs no CORS preflight
post=(p,o)=>(o=body(o),KA=o.length<2e4,fetch(url(p),{method:"POST",body:o,keepalive:KA})),
ev=k=>x=>({name:x.n,data:x.d,ts:x.ts,visitor:x.v,session:k}),
// local session id -> server token; the first tab that needs one starts it
token=e=>{let f=async()=>{let t=tok(),r;if(!t[e.s]){r=await post("/sessions",{ts:e.ts,visitor:e.v});if(r.status!=201)throw r;
r=(await r.json()).token;t=tok();t[e.s]=r;set(P+"t",t)}return t[e.s]};return L?L.request(P+"s",f):f()},
// in order, one request at a time; an entry leaves the queue only once the server has it (or refused it for good)
run=async()=>{for(;ready&&q[0]&&!dead&&n.onLine!=0&&!off();save()){let e=q[0],k=tok()[e.s],i=0,r;
if(e.x){F=1;r=k&&await post("/sessions/"+k+"/stop",{ts:e.ts});F=0;
if(r&&r.status>299&&!/^4(0[049]|10)/.test(r.status))throw r;forget(e.s);q[0]==e&&q.shift()}
else{k=k||await token(e);if(q[0]!=e)continue;
while(q[i]&&i<(solo?1:100)&&!q[i].x&&q[i].s==e.s)i++;
F=i;r=await post("/events",{events:q.slice(0,i).map(ev(k))});F=0;
if(r.status==201)q.splice(0,i),fails=g=0,solo&&solo--;
else if(r.status==410&&g++<3)forget(e.s);// stopped or timed out: a new session, then resend
else if(r.status==400||r.status==413)i>1?solo=i:(q.shift(),solo&&solo--,console.warn("clicktrail: refused",e.n));// one by one, to drop only the bad one
else throw r}}},
pump=()=>(clearTimeout(timer),timer=0,busy||(busy=run().catch(r=>{F=0;
if(r&&(r.status==401||r.status==403))return dead=1,console.warn("clicktrail: key refused");
let s=r&&r.headers&&+r.headers.get("Retry-After");
timer=setTimeout(pump,s>0?s*1e3:Math.min(3e5,1e3*2**++fails)*(.5+Math.random()))}).then(()=>(busy=0,q.length)))),
sched=x=>(x||q.length-F>=C.batchSize)&&!fails?pump():timer||(timer=setTimeout(pump,C.flushInterval)),
end=(S,t)=>q.push({x:1,s:S.i,ts:iso(t)}),
stop=t=>{let S=get(P+"s");S&&(set(P+"s"),end(S,t),save(),sched(1))},
// stops the session once no tab tracked anything for idleTimeout
arm=()=>{let S=get(P+"s"),i=C.idleTimeout;clearTimeout(idleT);
S&&(idleT=setTimeout(()=>{let T=get(P+"s");T&&Date.now()-T.a>=i?stop(T.a+i):arm()},S.a+i-Date.now()+99))},
track=(name,data)=>{if(off())return;name=String(name);let s=data==null?"":J.stringify(data),now=Date.now(),S=get(P+"s"),x;
if(!name||name.length>64||s&&(s[0]!="{"||new Blob([s]).size>8192))return console.warn("clicktrail: invalid event",name);
if(!S||now-S.a>C.idleTimeout)S&&end(S,Math.min(now,S.a+C.idleTimeout)),S={i:rid()},x=1;
S.a=now;set(P+"s",S);V||set(P+"v",V=rid());
q.length<5e3&&q.push({n:name,d:s?J.parse(s):void 0,ts:iso(now),v:V,s:S.i});save();arm();sched(x)},
// hidden or leaving: what is not in flight goes by sendBeacon (up to the next session stop); offline, it stays queued
hide=e=>{let p=e.type=="pagehide",t=tok(),i=F,j,x;if(!ready||!p&&d.visibilityState!="hidden")return;
if(n.onLine!=0&&n.sendBeacon&&!off()&&!dead){for(;(x=q[i])&&!x.x;i=j){for(j=i+1;q[j]&&j-i<C.batchSize&&!q[j].x&&q[j].s==x.s;)j++;
if(!n.sendBeacon(url("/events"),body({events:q.slice(i,j).map(ev(t[x.s]))})))break}q.splice(F,i-F)}
save(p&&KA)},
// queues of closed tabs (their lock released; without Web Locks: all) are adopted
reclaim=async()=>{let h=L&&await L.query().catch(e=>0);h=h&&h.held.map(l=>l.name);
for(let k of Object.keys(ls||{})){let x=!k.indexOf(P+"q:")&&k!=QK&&get(k);
if(x&&!(h&&h.includes(P+"tab:"+k.slice(P.length+2))))q=q.concat(x),save(),set(k)}pump()},
pv=()=>{let l=location,p=l.pathname+l.search;
if(p!=last)last=p,track("pageview",{url:l.href,path:p,title:d.title,referrer:ref||void 0}),ref=l.href},
click=e=>{let a=e.target.closest&&e.target.closest("a[href]");
a&&/^http/.test(a.protocol)&&a.host!=location.host&&track("outbound",{url:a.href,text:a.textContent.trim().slice(0,99)})},
on=(o,t,f)=>t.split(" ").map(t=>o.addEventListener(t,f,!0)),
init=o=>{Object.assign(C,o);let f=C.optOut,go=()=>{ready=1;q=(get(QK)||[]).concat(q);save();arm();reclaim()},
// a tab id that survives reloads; a duplicated tab finds its lock taken and picks another
hold=()=>{try{ss.setItem(P+"tab",I)}catch(e){}QK=P+"q:"+I;
L?L.request(P+"tab:"+I,{ifAvailable:!0},l=>l?(go(),new Promise(f=>f)):(I=rid(),hold())).catch(e=>(L=0,go())):go()};
if(typeof f=="string")C.optOut=()=>w[f]&&w[f]();
if(P||!C.key)return;P="clicktrail:"+C.key+":";O=get(P+"o");V=get(P+"v");
try{I=ss.getItem(P+"tab")}catch(e){}I=I||rid();hold();
on(w,"online",()=>{fails=0;reclaim()});on(d,"visibilitychange",hide);on(w,"pagehide",hide);
pre.map(a=>a[0](...a[1]));pre=0;
C.outboundLinks&&on(d,"click auxclick",click);
if(C.autoPageviews){ref=d.referrer;on(w,"popstate hashchange",()=>setTimeout(pv));
for(let m of["pushState","replaceState"]){let h=history[m];history[m]=function(){let r=h.apply(this,arguments);setTimeout(pv);return r}}pv()}},
api=f=>(...a)=>P?f(...a):void pre.push([f,a]),o={};
try{ls=w.localStorage;ss=w.sessionStorage}catch(e){}
w.clicktrail={init,track:api(track),flush:()=>P?pump():Promise.resolve(0),
identify:api(v=>off()||set(P+"v",V=String(v))),
start:api(()=>{stop();off()||(set(P+"s",{i:rid(),a:Date.now()}),arm())}),
stop:api(()=>stop()),
optOut:api((b=!0)=>{set(P+"o",O=b?1:null);b&&(q=[],"stv".split("").map(k=>set(P+k)),V=0,save())}),
setOptOut:f=>{C.optOut=f}};
// script attributes are options: data-key="ik_..." data-auto-pageviews="true" ...
for(let k in me?me.dataset:o){let v=me.dataset[k];v&&(o[k]=v=="true"||v!="false"&&(isNaN(v)?v:+v))}
init(o)})(window,document,navigator);
