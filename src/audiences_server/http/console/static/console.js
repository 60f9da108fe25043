var ae,y,Ae,$t,j,Ne,Ue,Te,Re,$e,me,he,bt,Q={},Le=[],vt=/acit|ex(?:s|g|n|p|$)|rph|grid|ows|mnc|ntw|ine[ch]|zoo|^ord|itera/i,se=Array.isArray;function L(e,t){for(var n in t)e[n]=t[n];return e}function be(e){e&&e.parentNode&&e.parentNode.removeChild(e)}function le(e,t,n){var r,i,o,a={};for(o in t)o=="key"?r=t[o]:o=="ref"?i=t[o]:a[o]=t[o];if(arguments.length>2&&(a.children=arguments.length>3?ae.call(arguments,2):n),typeof e=="function"&&e.defaultProps!=null)for(o in e.defaultProps)a[o]===void 0&&(a[o]=e.defaultProps[o]);return re(e,a,r,i,null)}function re(e,t,n,r,i){var o={type:e,props:t,key:n,ref:r,__k:null,__:null,__b:0,__e:null,__c:null,constructor:void 0,__v:i??++Ae,__i:-1,__u:0};return i==null&&y.vnode!=null&&y.vnode(o),o}function ce(e){return e.children}function Y(e,t){this.props=e,this.context=t}function V(e,t){if(t==null)return e.__?V(e.__,e.__i+1):null;for(var n;t<e.__k.length;t++)if((n=e.__k[t])!=null&&n.__e!=null)return n.__e;return typeof e.type=="function"?V(e):null}function Oe(e){var t,n;if((e=e.__)!=null&&e.__c!=null){for(e.__e=e.__c.base=null,t=0;t<e.__k.length;t++)if((n=e.__k[t])!=null&&n.__e!=null){e.__e=e.__c.base=n.__e;break}return Oe(e)}}function Pe(e){(!e.__d&&(e.__d=!0)&&j.push(e)&&!ie.__r++||Ne!==y.debounceRendering)&&((Ne=y.debounceRendering)||Ue)(ie)}function ie(){for(var e,t,n,r,i,o,a,c=1;j.length;)j.length>c&&j.sort(Te),e=j.shift(),c=j.length,e.__d&&(n=void 0,i=(r=(t=e).__v).__e,o=[],a=[],t.__P&&((n=L({},r)).__v=r.__v+1,y.vnode&&y.vnode(n),ve(t.__P,n,r,t.__n,t.__P.namespaceURI,32&r.__u?[i]:null,o,i??V(r),!!(32&r.__u),a),n.__v=r.__v,n.__.__k[n.__i]=n,Me(o,n,a),n.__e!=i&&Oe(n)));ie.__r=0}function Fe(e,t,n,r,i,o,a,c,s,u,f){var l,_,p,m,P,h,v=r&&r.__k||Le,$=t.length;for(s=gt(n,t,v,s,$),l=0;l<$;l++)(p=n.__k[l])!=null&&(_=p.__i===-1?Q:v[p.__i]||Q,p.__i=l,h=ve(e,p,_,i,o,a,c,s,u,f),m=p.__e,p.ref&&_.ref!=p.ref&&(_.ref&&ge(_.ref,null,p),f.push(p.ref,p.__c||m,p)),P==null&&m!=null&&(P=m),4&p.__u||_.__k===p.__k?s=He(p,s,e):typeof p.type=="function"&&h!==void 0?s=h:m&&(s=m.nextSibling),p.__u&=-7);return n.__e=P,s}function gt(e,t,n,r,i){var o,a,c,s,u,f=n.length,l=f,_=0;for(e.__k=new Array(i),o=0;o<i;o++)(a=t[o])!=null&&typeof a!="boolean"&&typeof a!="function"?(s=o+_,(a=e.__k[o]=typeof a=="string"||typeof a=="number"||typeof a=="bigint"||a.constructor==String?re(null,a,null,null,null):se(a)?re(ce,{children:a},null,null,null):a.constructor===void 0&&a.__b>0?re(a.type,a.props,a.key,a.ref?a.ref:null,a.__v):a).__=e,a.__b=e.__b+1,c=null,(u=a.__i=yt(a,n,s,l))!==-1&&(l--,(c=n[u])&&(c.__u|=2)),c==null||c.__v===null?(u==-1&&(i>f?_--:i<f&&_++),typeof a.type!="function"&&(a.__u|=4)):u!=s&&(u==s-1?_--:u==s+1?_++:(u>s?_--:_++,a.__u|=4))):e.__k[o]=null;if(l)for(o=0;o<f;o++)(c=n[o])!=null&&(2&c.__u)==0&&(c.__e==r&&(r=V(c)),Be(c,c));return r}function He(e,t,n){var r,i;if(typeof e.type=="function"){for(r=e.__k,i=0;r&&i<r.length;i++)r[i]&&(r[i].__=e,t=He(r[i],t,n));return t}e.__e!=t&&(t&&e.type&&!n.contains(t)&&(t=V(e)),n.insertBefore(e.__e,t||null),t=e.__e);do t=t&&t.nextSibling;while(t!=null&&t.nodeType==8);return t}function yt(e,t,n,r){var i,o,a=e.key,c=e.type,s=t[n];if(s===null&&e.key==null||s&&a==s.key&&c===s.type&&(2&s.__u)==0)return n;if(r>(s!=null&&(2&s.__u)==0?1:0))for(i=n-1,o=n+1;i>=0||o<t.length;){if(i>=0){if((s=t[i])&&(2&s.__u)==0&&a==s.key&&c===s.type)return i;i--}if(o<t.length){if((s=t[o])&&(2&s.__u)==0&&a==s.key&&c===s.type)return o;o++}}return-1}function De(e,t,n){t[0]=="-"?e.setProperty(t,n??""):e[t]=n==null?"":typeof n!="number"||vt.test(t)?n:n+"px"}function oe(e,t,n,r,i){var o;e:if(t=="style")if(typeof n=="string")e.style.cssText=n;else{if(typeof r=="string"&&(e.style.cssText=r=""),r)for(t in r)n&&t in n||De(e.style,t,"");if(n)for(t in n)r&&n[t]===r[t]||De(e.style,t,n[t])}else if(t[0]=="o"&&t[1]=="n")o=t!=(t=t.replace(Re,"$1")),t=t.toLowerCase()in e||t=="onFocusOut"||t=="onFocusIn"?t.toLowerCase().slice(2):t.slice(2),e.l||(e.l={}),e.l[t+o]=n,n?r?n.t=r.t:(n.t=$e,e.addEventListener(t,o?he:me,o)):e.removeEventListener(t,o?he:me,o);else{if(i=="http://www.w3.org/2000/svg")t=t.replace(/xlink(H|:h)/,"h").replace(/sName$/,"s");else if(t!="width"&&t!="height"&&t!="href"&&t!="list"&&t!="form"&&t!="tabIndex"&&t!="download"&&t!="rowSpan"&&t!="colSpan"&&t!="role"&&t!="popover"&&t in e)try{e[t]=n??"";break e}catch{}typeof n=="function"||(n==null||n===!1&&t[4]!="-"?e.removeAttribute(t):e.setAttribute(t,t=="popover"&&n==1?"":n))}}function ze(e){return function(t){if(this.l){var n=this.l[t.type+e];if(t.u==null)t.u=$e++;else if(t.u<n.t)return;return n(y.event?y.event(t):t)}}}function ve(e,t,n,r,i,o,a,c,s,u){var f,l,_,p,m,P,h,v,$,F,T,A,R,W,H,M,S,g=t.type;if(t.constructor!==void 0)return null;128&n.__u&&(s=!!(32&n.__u),o=[c=t.__e=n.__e]),(f=y.__b)&&f(t);e:if(typeof g=="function")try{if(v=t.props,$="prototype"in g&&g.prototype.render,F=(f=g.contextType)&&r[f.__c],T=f?F?F.props.value:f.__:r,n.__c?h=(l=t.__c=n.__c).__=l.__E:($?t.__c=l=new g(v,T):(t.__c=l=new Y(v,T),l.constructor=g,l.render=xt),F&&F.sub(l),l.props=v,l.state||(l.state={}),l.context=T,l.__n=r,_=l.__d=!0,l.__h=[],l._sb=[]),$&&l.__s==null&&(l.__s=l.state),$&&g.getDerivedStateFromProps!=null&&(l.__s==l.state&&(l.__s=L({},l.__s)),L(l.__s,g.getDerivedStateFromProps(v,l.__s))),p=l.props,m=l.state,l.__v=t,_)$&&g.getDerivedStateFromProps==null&&l.componentWillMount!=null&&l.componentWillMount(),$&&l.componentDidMount!=null&&l.__h.push(l.componentDidMount);else{if($&&g.getDerivedStateFromProps==null&&v!==p&&l.componentWillReceiveProps!=null&&l.componentWillReceiveProps(v,T),!l.__e&&(l.shouldComponentUpdate!=null&&l.shouldComponentUpdate(v,l.__s,T)===!1||t.__v==n.__v)){for(t.__v!=n.__v&&(l.props=v,l.state=l.__s,l.__d=!1),t.__e=n.__e,t.__k=n.__k,t.__k.some(function(x){x&&(x.__=t)}),A=0;A<l._sb.length;A++)l.__h.push(l._sb[A]);l._sb=[],l.__h.length&&a.push(l);break e}l.componentWillUpdate!=null&&l.componentWillUpdate(v,l.__s,T),$&&l.componentDidUpdate!=null&&l.__h.push(function(){l.componentDidUpdate(p,m,P)})}if(l.context=T,l.props=v,l.__P=e,l.__e=!1,R=y.__r,W=0,$){for(l.state=l.__s,l.__d=!1,R&&R(t),f=l.render(l.props,l.state,l.context),H=0;H<l._sb.length;H++)l.__h.push(l._sb[H]);l._sb=[]}else do l.__d=!1,R&&R(t),f=l.render(l.props,l.state,l.context),l.state=l.__s;while(l.__d&&++W<25);l.state=l.__s,l.getChildContext!=null&&(r=L(L({},r),l.getChildContext())),$&&!_&&l.getSnapshotBeforeUpdate!=null&&(P=l.getSnapshotBeforeUpdate(p,m)),M=f,f!=null&&f.type===ce&&f.key==null&&(M=je(f.props.children)),c=Fe(e,se(M)?M:[M],t,n,r,i,o,a,c,s,u),l.base=t.__e,t.__u&=-161,l.__h.length&&a.push(l),h&&(l.__E=l.__=null)}catch(x){if(t.__v=null,s||o!=null)if(x.then){for(t.__u|=s?160:128;c&&c.nodeType==8&&c.nextSibling;)c=c.nextSibling;o[o.indexOf(c)]=null,t.__e=c}else for(S=o.length;S--;)be(o[S]);else t.__e=n.__e,t.__k=n.__k;y.__e(x,t,n)}else o==null&&t.__v==n.__v?(t.__k=n.__k,t.__e=n.__e):c=t.__e=kt(n.__e,t,n,r,i,o,a,s,u);return(f=y.diffed)&&f(t),128&t.__u?void 0:c}function Me(e,t,n){for(var r=0;r<n.length;r++)ge(n[r],n[++r],n[++r]);y.__c&&y.__c(t,e),e.some(function(i){try{e=i.__h,i.__h=[],e.some(function(o){o.call(i)})}catch(o){y.__e(o,i.__v)}})}function je(e){return typeof e!="object"||e==null?e:se(e)?e.map(je):L({},e)}function kt(e,t,n,r,i,o,a,c,s){var u,f,l,_,p,m,P,h=n.props,v=t.props,$=t.type;if($=="svg"?i="http://www.w3.org/2000/svg":$=="math"?i="http://www.w3.org/1998/Math/MathML":i||(i="http://www.w3.org/1999/xhtml"),o!=null){for(u=0;u<o.length;u++)if((p=o[u])&&"setAttribute"in p==!!$&&($?p.localName==$:p.nodeType==3)){e=p,o[u]=null;break}}if(e==null){if($==null)return document.createTextNode(v);e=document.createElementNS(i,$,v.is&&v),c&&(y.__m&&y.__m(t,o),c=!1),o=null}if($===null)h===v||c&&e.data===v||(e.data=v);else{if(o=o&&ae.call(e.childNodes),h=n.props||Q,!c&&o!=null)for(h={},u=0;u<e.attributes.length;u++)h[(p=e.attributes[u]).name]=p.value;for(u in h)if(p=h[u],u!="children"){if(u=="dangerouslySetInnerHTML")l=p;else if(!(u in v)){if(u=="value"&&"defaultValue"in v||u=="checked"&&"defaultChecked"in v)continue;oe(e,u,null,p,i)}}for(u in v)p=v[u],u=="children"?_=p:u=="dangerouslySetInnerHTML"?f=p:u=="value"?m=p:u=="checked"?P=p:c&&typeof p!="function"||h[u]===p||oe(e,u,p,h[u],i);if(f)c||l&&(f.__html===l.__html||f.__html===e.innerHTML)||(e.innerHTML=f.__html),t.__k=[];else if(l&&(e.innerHTML=""),Fe(t.type==="template"?e.content:e,se(_)?_:[_],t,n,r,$=="foreignObject"?"http://www.w3.org/1999/xhtml":i,o,a,o?o[0]:n.__k&&V(n,0),c,s),o!=null)for(u=o.length;u--;)be(o[u]);c||(u="value",$=="progress"&&m==null?e.removeAttribute("value"):m!==void 0&&(m!==e[u]||$=="progress"&&!m||$=="option"&&m!==h[u])&&oe(e,u,m,h[u],i),u="checked",P!==void 0&&P!==e[u]&&oe(e,u,P,h[u],i))}return e}function ge(e,t,n){try{if(typeof e=="function"){var r=typeof e.__u=="function";r&&e.__u(),r&&t==null||(e.__u=e(t))}else e.current=t}catch(i){y.__e(i,n)}}function Be(e,t,n){var r,i;if(y.unmount&&y.unmount(e),(r=e.ref)&&(r.current&&r.current!==e.__e||ge(r,null,t)),(r=e.__c)!=null){if(r.componentWillUnmount)try{r.componentWillUnmount()}catch(o){y.__e(o,t)}r.base=r.__P=null}if(r=e.__k)for(i=0;i<r.length;i++)r[i]&&Be(r[i],t,n||typeof e.type!="function");n||be(e.__e),e.__c=e.__=e.__e=void 0}function xt(e,t,n){return this.constructor(e,n)}function ye(e,t,n){var r,i,o,a;t==document&&(t=document.documentElement),y.__&&y.__(e,t),i=(r=typeof n=="function")?null:n&&n.__k||t.__k,o=[],a=[],ve(t,e=(!r&&n||t).__k=le(ce,null,[e]),i||Q,Q,t.namespaceURI,!r&&n?[n]:i?null:t.firstChild?ae.call(t.childNodes):null,o,!r&&n?n:i?i.__e:t.firstChild,r,a),Me(o,e,a)}ae=Le.slice,y={__e:function(e,t,n,r){for(var i,o,a;t=t.__;)if((i=t.__c)&&!i.__)try{if((o=i.constructor)&&o.getDerivedStateFromError!=null&&(i.setState(o.getDerivedStateFromError(e)),a=i.__d),i.componentDidCatch!=null&&(i.componentDidCatch(e,r||{}),a=i.__d),a)return i.__E=i}catch(c){e=c}throw e}},Ae=0,$t=function(e){return e!=null&&e.constructor==null},Y.prototype.setState=function(e,t){var n;n=this.__s!=null&&this.__s!==this.state?this.__s:this.__s=L({},this.state),typeof e=="function"&&(e=e(L({},n),this.props)),e&&L(n,e),e!=null&&this.__v&&(t&&this._sb.push(t),Pe(this))},Y.prototype.forceUpdate=function(e){this.__v&&(this.__e=!0,e&&this.__h.push(e),Pe(this))},Y.prototype.render=ce,j=[],Ue=typeof Promise=="function"?Promise.prototype.then.bind(Promise.resolve()):setTimeout,Te=function(e,t){return e.__v.__b-t.__v.__b},ie.__r=0,Re=/(PointerCapture)$|Capture$/i,$e=0,me=ze(!1),he=ze(!0),bt=0;var ee,w,ke,We,ue=0,Ye=[],C=y,Ve=C.__b,qe=C.__r,Je=C.diffed,Ke=C.__c,Ge=C.unmount,Ze=C.__;function we(e,t){C.__h&&C.__h(w,e,ue||t),ue=0;var n=w.__H||(w.__H={__:[],__h:[]});return e>=n.__.length&&n.__.push({}),n.__[e]}function b(e){return ue=1,wt(et,e)}function wt(e,t,n){var r=we(ee++,2);if(r.t=e,!r.__c&&(r.__=[n?n(t):et(void 0,t),function(c){var s=r.__N?r.__N[0]:r.__[0],u=r.t(s,c);s!==u&&(r.__N=[u,r.__[1]],r.__c.setState({}))}],r.__c=w,!w.__f)){var i=function(c,s,u){if(!r.__c.__H)return!0;var f=r.__c.__H.__.filter(function(_){return!!_.__c});if(f.every(function(_){return!_.__N}))return!o||o.call(this,c,s,u);var l=r.__c.props!==c;return f.forEach(function(_){if(_.__N){var p=_.__[0];_.__=_.__N,_.__N=void 0,p!==_.__[0]&&(l=!0)}}),o&&o.call(this,c,s,u)||l};w.__f=!0;var o=w.shouldComponentUpdate,a=w.componentWillUpdate;w.componentWillUpdate=function(c,s,u){if(this.__e){var f=o;o=void 0,i(c,s,u),o=f}a&&a.call(this,c,s,u)},w.shouldComponentUpdate=i}return r.__N||r.__}function E(e,t){var n=we(ee++,3);!C.__s&&Qe(n.__H,t)&&(n.__=e,n.u=t,w.__H.__h.push(n))}function q(e){return ue=5,Ct(function(){return{current:e}},[])}function Ct(e,t){var n=we(ee++,7);return Qe(n.__H,t)&&(n.__=e(),n.__H=t,n.__h=e),n.__}function St(){for(var e;e=Ye.shift();)if(e.__P&&e.__H)try{e.__H.__h.forEach(de),e.__H.__h.forEach(xe),e.__H.__h=[]}catch(t){e.__H.__h=[],C.__e(t,e.__v)}}C.__b=function(e){w=null,Ve&&Ve(e)},C.__=function(e,t){e&&t.__k&&t.__k.__m&&(e.__m=t.__k.__m),Ze&&Ze(e,t)},C.__r=function(e){qe&&qe(e),ee=0;var t=(w=e.__c).__H;t&&(ke===w?(t.__h=[],w.__h=[],t.__.forEach(function(n){n.__N&&(n.__=n.__N),n.u=n.__N=void 0})):(t.__h.forEach(de),t.__h.forEach(xe),t.__h=[],ee=0)),ke=w},C.diffed=function(e){Je&&Je(e);var t=e.__c;t&&t.__H&&(t.__H.__h.length&&(Ye.push(t)!==1&&We===C.requestAnimationFrame||((We=C.requestAnimationFrame)||Et)(St)),t.__H.__.forEach(function(n){n.u&&(n.__H=n.u),n.u=void 0})),ke=w=null},C.__c=function(e,t){t.some(function(n){try{n.__h.forEach(de),n.__h=n.__h.filter(function(r){return!r.__||xe(r)})}catch(r){t.some(function(i){i.__h&&(i.__h=[])}),t=[],C.__e(r,n.__v)}}),Ke&&Ke(e,t)},C.unmount=function(e){Ge&&Ge(e);var t,n=e.__c;n&&n.__H&&(n.__H.__.forEach(function(r){try{de(r)}catch(i){t=i}}),n.__H=void 0,t&&C.__e(t,n.__v))};var Xe=typeof requestAnimationFrame=="function";function Et(e){var t,n=function(){clearTimeout(r),Xe&&cancelAnimationFrame(t),setTimeout(e)},r=setTimeout(n,100);Xe&&(t=requestAnimationFrame(n))}function de(e){var t=w,n=e.__c;typeof n=="function"&&(e.__c=void 0,n()),w=t}function xe(e){var t=w;e.__c=e.__(),w=t}function Qe(e,t){return!e||e.length!==t.length||t.some(function(n,r){return n!==e[r]})}function et(e,t){return typeof t=="function"?t(e):t}var Ce="audiences.console.token",O={get:()=>sessionStorage.getItem(Ce)||"",set:e=>sessionStorage.setItem(Ce,e),clear:()=>sessionStorage.removeItem(Ce)},J=class extends Error{constructor(t,n){super(n.message||`HTTP ${t}`),this.status=t,this.error=n}describe(){let{reason:t="",message:n=this.message}=this.error;return this.status===403?`Refused by the server (403 ${t}): ${n}`:this.status===401?`Not signed in (401 ${t}): ${n}`:`${n} (${this.status} ${t})`}},tt=()=>{};function nt(e){tt=e}async function pe(e,t,n){let r={Accept:"application/json"},i=O.get();i&&(r.Authorization=`Bearer ${i}`),n!==void 0&&(r["Content-Type"]="application/json");let o;try{o=await fetch(`/console/api${t}`,{method:e,headers:r,body:n===void 0?void 0:JSON.stringify(n),credentials:"omit",cache:"no-store"})}catch(s){throw new J(0,{reason:"UNREACHABLE",message:`the server could not be reached: ${s.message}`})}let a=await o.text(),c={};try{c=a?JSON.parse(a):{}}catch{c={error:{message:a}}}if(!o.ok){let s=new J(o.status,c.error||{});throw o.status===401&&tt(s),s}return c}var I=e=>pe("GET",e),B=(e,t)=>pe("POST",e,t??{}),te=(e,t)=>pe("PATCH",e,t),ot=e=>pe("DELETE",e),K=e=>{let t=new URLSearchParams;for(let[r,i]of Object.entries(e))i!==""&&i!=null&&t.set(r,i);let n=t.toString();return n?`?${n}`:""};var it=function(e,t,n,r){var i;t[0]=0;for(var o=1;o<t.length;o++){var a=t[o++],c=t[o]?(t[0]|=a?1:2,n[t[o++]]):t[++o];a===3?r[0]=c:a===4?r[1]=Object.assign(r[1]||{},c):a===5?(r[1]=r[1]||{})[t[++o]]=c:a===6?r[1][t[++o]]+=c+"":a?(i=e.apply(c,it(e,c,n,["",null])),r.push(i),c[0]?t[0]|=2:(t[o-2]=0,t[o]=i)):r.push(c)}return r},rt=new Map;function at(e){var t=rt.get(this);return t||(t=new Map,rt.set(this,t)),(t=it(this,t.get(e)||(t.set(e,t=function(n){for(var r,i,o=1,a="",c="",s=[0],u=function(_){o===1&&(_||(a=a.replace(/^\s*\n\s*|\s*\n\s*$/g,"")))?s.push(0,_,a):o===3&&(_||a)?(s.push(3,_,a),o=2):o===2&&a==="..."&&_?s.push(4,_,0):o===2&&a&&!_?s.push(5,0,!0,a):o>=5&&((a||!_&&o===5)&&(s.push(o,0,a,i),o=6),_&&(s.push(o,_,0,i),o=6)),a=""},f=0;f<n.length;f++){f&&(o===1&&u(),u(f));for(var l=0;l<n[f].length;l++)r=n[f][l],o===1?r==="<"?(u(),s=[s],o=3):a+=r:o===4?a==="--"&&r===">"?(o=1,a=""):a=r+a[0]:c?r===c?c="":a+=r:r==='"'||r==="'"?c=r:r===">"?(u(),o=1):o&&(r==="="?(o=5,i=a,a=""):r==="/"&&(o<5||n[f][l+1]===">")?(u(),o===3&&(s=s[0]),o=s,(s=s[0]).push(2,0,o),o=0):r===" "||r==="	"||r===`
`||r==="\r"?(u(),o=2):a+=r),o===3&&a==="!--"&&(o=4,s=s[0])}return u(),s}(e)),t),arguments,[])).length>1?t:t[0]}var d=at.bind(le);var N=e=>e===void 0?"":JSON.stringify(e);function k(e){return e?e.replace("T"," ").replace(/\.\d+Z$/," UTC"):"—"}function fe(e){return e==null?"—":e<1e3?`${e} ms`:e<12e4?`${(e/1e3).toFixed(1)} s`:e<72e5?`${Math.round(e/6e4)} min`:`${(e/36e5).toFixed(1)} h`}var U=e=>e instanceof J?e.describe():String(e);function G({notice:e}){if(!e)return null;let t=e.kind==="error";return d`<p class=${`notice ${t?"error":"ok"}`} role=${t?"alert":"status"}>${e.text}</p>`}function z(e,t,n=0){let[r,i]=b({data:null,error:null,loading:!0}),o=q(0),a=async()=>{let c=++o.current;try{let s=await e();c===o.current&&i({data:s,error:null,loading:!1})}catch(s){c===o.current&&i(u=>({data:u.data,error:s,loading:!1}))}};return E(()=>{i(c=>({...c,loading:!0})),a()},t),E(()=>{if(!n)return;let c=setInterval(()=>{document.hidden||a()},n);return()=>clearInterval(c)},[...t,n]),{...r,reload:a}}function Se(e,t,n){E(()=>{let r=setTimeout(e,n);return()=>clearTimeout(r)},t)}function D({error:e}){return e?d`<p class="notice error" role="alert">${U(e)}</p>`:null}function _e({points:e,label:t,width:n=320,height:r=90}){if(!e||!e.length)return d`<p class="muted">No size history yet.</p>`;let i={left:34,right:6,top:8,bottom:18},o=e.map(h=>h.size),a=Math.max(1,...o),c=Math.min(0,...o),s=n-i.left-i.right,u=r-i.top-i.bottom,f=h=>i.left+(e.length===1?s:h*s/(e.length-1)),l=h=>i.top+u-(h-c)/(a-c||1)*u,_=e.map((h,v)=>`${f(v).toFixed(1)},${l(h.size).toFixed(1)}`).join(" "),p=e[0].start.slice(5,16).replace("T"," "),m=e[e.length-1].start.slice(5,16).replace("T"," "),P=e[e.length-1].size;return d`
    <svg class="chart" viewBox=${`0 0 ${n} ${r}`} role="img" aria-label=${`${t}: size ${P} now, from ${p} to ${m}`}>
      <title>${t}</title>
      <line x1=${i.left} y1=${i.top+u} x2=${i.left+s} y2=${i.top+u} class="axis" />
      <line x1=${i.left} y1=${i.top} x2=${i.left} y2=${i.top+u} class="axis" />
      <text x=${i.left-4} y=${i.top+8} class="tick" text-anchor="end">${a}</text>
      <text x=${i.left-4} y=${i.top+u} class="tick" text-anchor="end">${c}</text>
      <text x=${i.left} y=${r-4} class="tick">${p}</text>
      <text x=${i.left+s} y=${r-4} class="tick" text-anchor="end">${m}</text>
      <polyline points=${_} class="series" />
      ${e.map((h,v)=>d`<circle cx=${f(v)} cy=${l(h.size)} r="2" class="dot"><title>${`${h.start}: ${h.size} (+${h.entered} −${h.exited})`}</title></circle>`)}
    </svg>`}var Ee=e=>`/computations/${encodeURIComponent(e.collection)}/${encodeURIComponent(e.key)}`;function It({c:e}){let{done:t,total:n}=e.backfill;return e.status!=="BACKFILLING"?d`<span class="muted">${n?`${t} / ${n}`:"—"}</span>`:d`<progress max=${n||1} value=${t} aria-label=${`${e.key} backfill`}>${t} / ${n}</progress>
    <span> ${t} / ${n}</span>`}function Nt({c:e,onChanged:t,setNotice:n}){let[r,i]=b(!1),o=async(s,u,f)=>{try{await f(),n({kind:"ok",text:`${e.key}: ${u}.`})}catch(l){n({kind:"error",text:`${e.key}: could not ${s}. ${U(l)}`})}i(!1),t()},a=()=>e.enabled?o("disable","disabled",()=>te(Ee(e),{enabled:!1})):o("enable","enabled",()=>te(Ee(e),{enabled:!0})),c=()=>o("delete","deleted",()=>ot(Ee(e)));return d`
    <tr data-key=${e.key}>
      <th scope="row"><a href=${`#/builder/${e.collection}/${encodeURIComponent(e.key)}`}>${e.name}</a>
        <div class="muted mono">${e.key}</div></th>
      <td>${e.kind==="audience"?"audience":"computed trait"}<div class="muted">${e.collection}</div></td>
      <td><span class=${`status s-${e.status.toLowerCase()}`}>${e.status}</span>
        ${e.error&&d`<div class="error-text">${e.error}</div>`}</td>
      <td class="num size">${e.size}</td>
      <td><${It} c=${e} /></td>
      <td>${k(e.last_computed)}</td>
      <td class="chart-cell"><${_e} points=${e.sizes} label=${`${e.key} size, last 48 hours`} /></td>
      <td class="actions">
        <button type="button" onClick=${a}>${e.enabled?"Disable":"Enable"}<span class="sr"> ${e.key}</span></button>
        ${r?d`<button type="button" class="danger" onClick=${c}>Confirm delete<span class="sr"> ${e.key}</span></button>
                 <button type="button" onClick=${()=>i(!1)}>Keep</button>`:d`<button type="button" onClick=${()=>i(!0)}>Delete<span class="sr"> ${e.key}</span></button>`}
      </td>
    </tr>`}function st(){let[e,t]=b(null),{data:n,error:r,reload:i}=z(()=>I("/computations?sizes=hourly"),[],2e3),o=n?n.computations:[];return d`
    <section aria-labelledby="list-title">
      <div class="title-row">
        <h1 id="list-title">Audiences and computed traits</h1>
        <a class="button" href="#/builder/new">New definition</a>
      </div>
      ${n&&d`<p class="muted">Evaluator clock: ${k(n.clock.now)}${n.clock.manual?" (manual)":""}</p>`}
      <${G} notice=${e} />
      <${D} error=${r} />
      ${n&&!o.length&&d`<p>No definitions yet. <a href="#/builder/new">Write the first one</a>.</p>`}
      ${o.length>0&&d`
        <div class="table-wrap">
          <table class="computations">
            <caption class="sr">Each definition's status, size, backfill and size over time</caption>
            <thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Status</th>
              <th scope="col">Size</th><th scope="col">Backfill</th><th scope="col">Last computed</th>
              <th scope="col">Size, 48 h</th><th scope="col">Actions</th></tr></thead>
            <tbody>${o.map(a=>d`<${Nt} key=${a.id} c=${a} onChanged=${i} setNotice=${t} />`)}</tbody>
          </table>
        </div>`}
    </section>`}var Pt="event('Order Completed').within(30 days).count() >= 1",ne={include_anonymous_users:!1,include_historical_data:!0,backfill_days:0},Dt=["name","description","definition"],zt=e=>({kind:e.kind,collection:e.collection,key:e.key,name:e.name,description:e.description,definition:e.definition,options:{...ne,...e.options},enabled:e.enabled});function At(e,t){let n={};for(let o of Dt)e[o]!==t[o]&&(n[o]=e[o]);let r={...ne,...t.options},i=Object.fromEntries(Object.entries(e.options).filter(([o,a])=>a!==r[o]));return Object.keys(i).length&&(n.options=i),n}var Ut=(e,t)=>e.definition===t.definition&&JSON.stringify({...ne,...e.options})===JSON.stringify({...ne,...t.options});function Tt({summary:e}){if(!e)return null;let t=[["Events",e.events],["Properties",e.properties],["Context",e.context_paths],["Traits",e.traits]],n=e.lookback_unbounded?"all history":e.lookback_ms?fe(e.lookback_ms):"none";return d`
    <dl class="summary" aria-label="Dependency summary">
      ${t.map(([r,i])=>d`<dt>${r}</dt><dd>${i.length?i.join(", "):"—"}</dd>`)}
      <dt>Looks back</dt><dd>${n}</dd>
    </dl>`}function Rt({problem:e}){let[t]=e.message.split("; did you mean");return d`
    <div class="problem" role="alert" aria-live="assertive">
      <p><b>${e.reason}</b>${e.line?` at line ${e.line}, column ${e.column}`:""}: ${t}</p>
      ${e.caret_display&&d`<pre class="caret" aria-label="Where the error is">${e.caret_display}</pre>`}
      ${e.hint&&d`<p class="hint">Hint: ${e.hint}</p>`}
    </div>`}var Lt=e=>e?e.identifiers[0]||e.id:"(gone)";function lt({items:e,value:t=!0}){return e.length?d`<ul class="samples">${e.map(n=>d`
    <li><a href=${`#/profiles/${n.profile?.collection||"users"}/${encodeURIComponent(n.profile?.id||"")}`}>${Lt(n.profile)}</a>
      ${t&&n.value!==!0&&d` <span class="mono">${N(n.value)}</span>`}
      ${"old"in n&&d` <span class="mono muted">${N(n.old)} → ${N(n.new)}</span>`}</li>`)}</ul>`:d`<p class="muted">No sample.</p>`}function Ot({diff:e}){return d`
    <section class="diff" aria-labelledby="diff-title">
      <h3 id="diff-title">If saved, against ${e.compare_key} as stored</h3>
      <div class="columns">
        ${["entering","exiting","staying"].map(t=>d`
          <div class=${`outcome ${t}`} data-outcome=${t}>
            <h4>${t[0].toUpperCase()+t.slice(1)}: <span class="count">${e[t]}</span></h4>
            <${lt} items=${e.samples[t]||[]} value=${!1} />
          </div>`)}
      </div>
      ${e.changed>0&&d`<p>${e.changed} staying profiles would change value.</p>`}
    </section>`}function Ft({target:e,version:t,onRolledBack:n,setNotice:r}){let{data:i,error:o}=z(()=>I(`${e}/versions`),[e,t]),a=i&&i.versions.find(s=>s.current),c=async s=>{try{let{computation:u,changed:f}=await B(`${e}/rollback`,{version:s});r({kind:"ok",text:f.length?`Rolled back to version ${s}: saved as version ${u.version}; it is ${u.status}.`:`Version ${s} has the current text and options: nothing changed (still version ${u.version}, ${u.status}).`}),n()}catch(u){r({kind:"error",text:`Rollback failed. ${U(u)}`})}};return d`
    <section aria-labelledby="versions-title">
      <h2 id="versions-title">Versions</h2>
      <${D} error=${o} />
      ${i&&d`<div class="table-wrap"><table>
        <thead><tr><th scope="col">Version</th><th scope="col">Saved</th><th scope="col">By</th>
          <th scope="col">Size after backfill</th><th scope="col">Definition</th><th scope="col"></th></tr></thead>
        <tbody>${i.versions.map(s=>d`<tr>
          <th scope="row">${s.version}${s.current?" (current)":""}</th><td>${k(s.created)}</td><td>${s.actor||"—"}</td>
          <td class="num">${s.size_after_backfill??"—"}</td><td><code>${s.definition}</code></td>
          <td>${s.current?"":a&&Ut(s,a)?d`<span class="muted">Same as current</span>`:d`<button type="button" onClick=${()=>c(s.version)}>Roll back to version ${s.version}</button>`}</td>
        </tr>`)}</tbody></table></div>`}
    </section>`}function Ht({target:e,version:t}){let[n,r]=b("hourly"),{data:i,error:o}=z(()=>I(`${e}/sizes?interval=${n}`),[e,n,t]),a=i?i.points.reduce((c,s)=>c+s.entered+s.exited,0):0;return d`
    <section aria-labelledby="sizes-title">
      <h2 id="sizes-title">Size over time</h2>
      <label for="size-interval">Interval</label>
      <select id="size-interval" value=${n} onChange=${c=>r(c.target.value)}>
        <option value="hourly">Hourly, last 48 hours</option><option value="daily">Daily, last 30 days</option></select>
      <${D} error=${o} />
      ${i&&d`<p>Size now <b>${i.size}</b>; ${a} entries and exits in the range shown.</p>
        <${_e} points=${i.points} label=${`${i.key} size, ${n}`} width=${640} height=${160} />`}
    </section>`}function ct({args:e}){let t=e.length===2,[n,r]=t?e:["users",""],i=`/computations/${encodeURIComponent(n)}/${encodeURIComponent(r)}`,[o,a]=b({kind:"audience",collection:"users",key:"",name:"",description:"",definition:t?"":Pt,options:ne,enabled:!0}),[c,s]=b(null),[u,f]=b(""),[l,_]=b(null),[p,m]=b(null),[P,h]=b(!1),[v,$]=b(null),[F,T]=b(null),A=S=>g=>a({...o,[S]:g.target.type==="checkbox"?g.target.checked:g.target.value}),R=S=>g=>a({...o,options:{...o.options,[S]:g.target.type==="checkbox"?g.target.checked:parseInt(g.target.value,10)||0}}),W=async(S=null)=>{try{let{computation:g,etag:x}=await I(i);s(g),f(x);let X=zt(g);a(S?{...X,...S,options:{...X.options,...S.options||{}}}:X)}catch(g){T(g)}};E(()=>{m(null),_(null),$(null),t&&W()},[i]),Se(async()=>{if(!o.definition.trim()){_(null);return}try{_(await B("/validate",{kind:o.kind,collection:o.collection,key:o.key,definition:o.definition}))}catch(S){_({valid:!1,failure:S})}},[o.definition,o.kind,o.collection,o.key],300);let H=async()=>{h(!0);try{m(await B("/preview",{kind:o.kind,collection:o.collection,definition:o.definition,options:o.options,sample_size:10,compare_key:t?r:""}))}catch(S){m({failure:S})}h(!1)};Se(()=>{l&&l.valid&&H()},[l,JSON.stringify(o.options)],400);let M=async S=>{S.preventDefault();let g=t&&c?At(o,c):{};try{if(t){if(!Object.keys(g).length){$({kind:"ok",text:"Nothing changed: not saved."});return}let{computation:x,etag:X}=await te(i,{...g,etag:u});s(x),f(X),$({kind:"ok",text:`Saved ${x.key} as version ${x.version}; it is ${x.status}.`})}else{let{computation:x}=await B("/computations",{kind:o.kind,collection:o.collection,key:o.key,name:o.name,description:o.description,definition:o.definition,enabled:o.enabled,options:o.options});location.hash=`#/audiences/${encodeURIComponent(x.key)}`}}catch(x){if(x.status===409&&x.error.reason==="EDIT_CONFLICT"){await W(g),$({kind:"error",text:`Not saved: ${r} was saved by someone else since you loaded it. The saved definition has been loaded again with your edits kept in the form; check the diff, then save again.`});return}$({kind:"error",text:`Not saved. ${U(x)}`}),x.error&&x.error.definition&&_({valid:!1,error:x.error.definition})}};return d`
    <section aria-labelledby="builder-title">
      <h1 id="builder-title">${t?`Edit ${r}`:"New audience or computed trait"}</h1>
      <${D} error=${F} />
      <form class="builder" onSubmit=${M}>
        <div class="fields">
          <label for="f-kind">Kind</label>
          <select id="f-kind" value=${o.kind} onChange=${A("kind")} disabled=${t}>
            <option value="audience">Audience</option><option value="computed_trait">Computed trait</option></select>
          <label for="f-collection">Collection</label>
          <select id="f-collection" value=${o.collection} onChange=${A("collection")} disabled=${t}>
            <option value="users">Users</option><option value="accounts">Accounts</option></select>
          <label for="f-key">Key</label>
          <input id="f-key" value=${o.key} onInput=${A("key")} readOnly=${t} required pattern="[a-z][a-z0-9_]*"
                 aria-describedby="f-key-help" />
          <span id="f-key-help" class="help">snake_case: a–z, 0–9 and _, starting with a letter; fixed once saved.</span>
          <label for="f-name">Name</label>
          <input id="f-name" value=${o.name} onInput=${A("name")} />
          <label for="f-description">Description</label>
          <input id="f-description" value=${o.description} onInput=${A("description")} />
          <label class="check"><input type="checkbox" checked=${o.options.include_anonymous_users}
            onChange=${R("include_anonymous_users")} /> Include anonymous users</label>
          <label class="check"><input type="checkbox" checked=${o.options.include_historical_data}
            onChange=${R("include_historical_data")} /> Include historical data</label>
          <label for="f-backfill-days">Backfill days</label>
          <input id="f-backfill-days" type="number" min="0" step="1" value=${o.options.backfill_days}
                 onInput=${R("backfill_days")} aria-describedby="f-backfill-help" />
          <span id="f-backfill-help" class="help">With historical data: only events from this many days before creation on (0: all).</span>
          ${!t&&d`<label class="check"><input type="checkbox" checked=${o.enabled} onChange=${A("enabled")} /> Enabled</label>`}
        </div>
        <label for="f-definition">Definition</label>
        <textarea id="f-definition" class="mono" rows="6" spellcheck=${!1} value=${o.definition}
                  onInput=${A("definition")} aria-describedby="validation"></textarea>
        <div id="validation" class="validation" aria-live="polite">
          ${l&&l.valid&&d`<p class="valid">Valid.</p>`}
          ${l&&l.error&&d`<${Rt} problem=${l.error} />`}
          ${l&&l.failure&&d`<${D} error=${l.failure} />`}
          ${l&&l.summary&&d`<h2>Reads</h2><${Tt} summary=${l.summary} />`}
        </div>
        <div class="buttons">
          <button type="button" onClick=${H} disabled=${P}>Preview</button>
          <button type="submit" class="primary">${t?"Save changes":"Save"}</button>
          ${t&&d`<a href="#/builder/new">New definition</a>`}
        </div>
        <${G} notice=${v} />
      </form>
      <section class="preview" aria-labelledby="preview-title" aria-live="polite" aria-busy=${P}>
        <h2 id="preview-title">Preview</h2>
        ${!p&&d`<p class="muted">A valid definition is previewed over every profile as it stands now.</p>`}
        ${p&&p.failure&&d`<${D} error=${p.failure} />`}
        ${p&&!p.failure&&d`
          <p class="preview-count"><b class="count">${p.count}</b> ${o.kind==="audience"?"profiles match":"profiles have a value"} (evaluated ${k(p.evaluated)})</p>
          <${lt} items=${p.samples} />
          ${p.diff&&d`<${Ot} diff=${p.diff} />`}`}
      </section>
      ${t&&c&&d`<${Ht} target=${i} version=${c.version} />`}
      ${t&&c&&d`<${Ft} target=${i} version=${c.version} onRolledBack=${W} setNotice=${$} />`}
    </section>`}var Mt=50;function jt(e){return e.change.type==="changed"?d`changed <span class="mono">${N(e.change.old)} → ${N(e.change.new)}</span>`:e.change.type}function Bt({items:e}){return e.length?d`<div class="table-wrap"><table class="connections">
    <thead><tr><th scope="col">Definition</th><th scope="col">Phase</th><th scope="col">Pending</th>
      <th scope="col">Delivered</th><th scope="col">Retrying</th><th scope="col">Dead</th><th scope="col">Lag</th>
      <th scope="col">Last delivery</th><th scope="col">Last failure</th></tr></thead>
    <tbody>${e.map(t=>d`<tr>
      <th scope="row">${t.computation.key} <span class="muted">${t.computation.collection}</span></th>
      <td>${t.phase}</td><td class="num">${t.pending}</td><td class="num">${t.delivered}</td>
      <td class="num">${t.retrying}</td><td class="num">${t.dead}</td><td>${fe(t.lag_ms)}</td>
      <td>${k(t.last_delivery)}</td>
      <td>${t.last_error?d`<span class="error-text">${t.last_error}</span> <span class="muted">${k(t.last_error_at)}</span>`:"—"}</td>
    </tr>`)}</tbody></table></div>`:d`<p class="muted">Nothing connected.</p>`}function Wt({destination:e,onRedriven:t,setNotice:n}){let[r,i]=b({letters:[],next:""}),[o,a]=b(null),c=e.dead_letters.map(p=>p.id).join(",");E(()=>{i({letters:[],next:""})},[e.key,c]);let s=[...e.dead_letters,...r.letters],u=r.letters.length?r.next:e.dead_letters_next,f=e.dead_letters_total,l=async()=>{try{let p=await I(`/destinations/${encodeURIComponent(e.key)}/dead-letters${K({after:u,limit:Mt})}`);i({letters:[...r.letters,...p.dead_letters],next:p.next}),a(null)}catch(p){a(p)}},_=async p=>{try{let{redriven:m}=await B(`/destinations/${encodeURIComponent(e.key)}/redrive`,{ids:p});n({kind:"ok",text:`${e.key}: ${m} dead letter${m===1?"":"s"} put back in the queue.`})}catch(m){n({kind:"error",text:`${e.key}: redrive failed. ${U(m)}`})}t()};return d`
    <h3>Dead letters (${f})</h3>
    ${!s.length&&d`<p class="muted">None.</p>`}
    ${s.length>0&&s.length<f&&d`<p class="muted">Showing the oldest ${s.length} of ${f}.</p>`}
    ${s.length>0&&d`
      <button type="button" onClick=${()=>_([])}>Redrive all<span class="sr"> of ${e.key}</span></button>
      <div class="table-wrap"><table class="dead-letters">
        <thead><tr><th scope="col">Id</th><th scope="col">Definition</th><th scope="col">Change</th><th scope="col">Profile</th>
          <th scope="col">Attempts</th><th scope="col">Last error</th><th scope="col">Parked</th><th scope="col"></th></tr></thead>
        <tbody>${s.map(p=>d`<tr data-id=${p.id}>
          <th scope="row" class="mono">${p.id}</th><td>${p.computation.key}</td><td class="change">${jt(p)}</td>
          <td><a href=${`#/profiles/${p.computation.collection}/${encodeURIComponent(p.profile_id)}`}>${p.profile_id}</a></td>
          <td class="num">${p.attempts}</td><td class="error-text">${p.last_error}</td><td>${k(p.dead_at)}</td>
          <td><button type="button" onClick=${()=>_([p.id])}>Redrive<span class="sr"> ${p.id}</span></button></td>
        </tr>`)}</tbody></table></div>
      ${u&&d`<button type="button" class="more" onClick=${l}>Show more<span class="sr"> dead letters of ${e.key}</span></button>`}
      <${D} error=${o} />`}`}function dt(){let[e,t]=b(null),{data:n,error:r,reload:i}=z(()=>I("/destinations"),[],3e3),o=n?n.destinations:[];return d`
    <section aria-labelledby="destinations-title">
      <div class="title-row">
        <h1 id="destinations-title">Destinations</h1>
        <button type="button" onClick=${i}>Refresh</button>
      </div>
      <${G} notice=${e} />
      <${D} error=${r} />
      ${n&&!o.length&&d`<p>No destinations. Create one with <code>audiences destinations create</code>.</p>`}
      ${o.map(a=>d`
        <article class="destination" data-key=${a.key} aria-labelledby=${`d-${a.key}`}>
          <h2 id=${`d-${a.key}`}>${a.name||a.key} <span class="muted">${a.kind}${a.enabled?"":" · disabled"}</span></h2>
          <p class="muted mono">${a.config.url||a.config.table_prefix||a.key}</p>
          <h3>Connections</h3>
          <${Bt} items=${a.connections} />
          <${Wt} destination=${a} onRedriven=${i} setNotice=${t} />
        </article>`)}
    </section>`}function Vt({stream:e}){return d`
    <div class="stream">
      <p><b>${e.event}</b>: ${e.seen} seen, ${e.count} kept</p>
      ${e.filters.length>0&&d`<ol class="filters">${e.filters.map(t=>d`
        <li><code>${t.filter}</code> leaves ${t.remaining}</li>`)}</ol>`}
      ${e.events.length>0&&d`<div class="table-wrap"><table class="evidence">
        <thead><tr><th scope="col">Time</th><th scope="col">Message</th><th scope="col">Value</th><th scope="col">Read</th></tr></thead>
        <tbody>${e.events.map(t=>d`<tr>
          <td>${k(t.timestamp)}</td><td class="mono">${t.message_id}</td><td class="mono">${N(t.value)}</td>
          <td class="mono">${Object.entries(t.read).map(([n,r])=>`${n} = ${N(r)}`).join("; ")}</td></tr>`)}
        </tbody></table></div>`}
    </div>`}function Ie({node:e}){let t=e.value===!0?"holds":e.value===!1?"fails":"value";return d`
    <li class=${`node ${t}`}>
      <span class="verdict">${e.value===!0?"✓":e.value===!1?"✗":"="}</span>
      <code>${e.text}</code> <span class="mono value">${N(e.value)}</span>
      ${e.trait&&d` <span class="muted">(${e.trait.class.replace("_"," ")} ${e.trait.key})</span>`}
      ${e.stream&&d`<${Vt} stream=${e.stream} />`}
      ${e.users&&d`<p class="muted">${e.users_satisfying} of ${e.users_total} linked users satisfy it</p>
        <ul>${e.users.map(n=>d`<li>${n.profile?.identifiers[0]||n.profile?.id}: ${n.satisfied?"yes":"no"}
          <ul class="tree"><${Ie} node=${n.node} /></ul></li>`)}</ul>`}
      ${e.children.length>0&&d`<ul class="tree">${e.children.map(n=>d`<${Ie} node=${n} />`)}</ul>`}
    </li>`}function ut({collection:e,definitionKey:t,address:n,onClose:r}){let i=q(null);E(()=>i.current?.focus(),[t,n]);let{data:o,error:a}=z(()=>I(`/explain/${encodeURIComponent(e)}/${encodeURIComponent(t)}${K({profile:n})}`),[e,t,n]);return d`
    <section class="explain" aria-labelledby="explain-title" tabindex="-1" ref=${i}>
      <div class="title-row">
        <h2 id="explain-title">Why: ${t}</h2>
        <button type="button" onClick=${r}>Close</button>
      </div>
      <${D} error=${a} />
      ${o&&d`
        <p>Value <b class="mono">${N(o.value)}</b> at ${k(o.at)}; stored <span class="mono">${N(o.stored)}</span>
          ${o.pending?" (waiting for a tick)":""}${o.anonymous_excluded?"; anonymous users are left out":""}</p>
        <pre class="definition">${o.definition.text}</pre>
        <ul class="tree root"><${Ie} node=${o.root} /></ul>
        <p class="next">${o.next_change.summary}</p>`}
    </section>`}var pt=(e,t,n,r={})=>I(`/profiles/${e}/${n}${K({address:t,...r})}`);function Z({collection:e,address:t,name:n,params:r={},render:i,title:o}){let[a,c]=b([""]),s=a[a.length-1],u=JSON.stringify(r);E(()=>c([""]),[e,t,u]);let{data:f,error:l}=z(()=>pt(e,t,n,{...r,next:s}),[e,t,u,s]);return d`
    <section class="part" aria-label=${o}>
      <${D} error=${l} />
      ${f&&(f.items.length?i(f.items):d`<p class="muted">None.</p>`)}
      <div class="pager">
        ${a.length>1&&d`<button type="button" onClick=${()=>c(a.slice(0,-1))}>Previous page</button>`}
        ${f&&f.next&&d`<button type="button" onClick=${()=>c([...a,f.next])}>Next page</button>`}
      </div>
    </section>`}function qt({collection:e,address:t}){let[n,r]=b("");return d`
    <h2>Traits</h2>
    <label for="trait-class">Class</label>
    <select id="trait-class" value=${n} onChange=${i=>r(i.target.value)}>
      <option value="">All</option><option value="custom">Custom</option>
      <option value="computed_trait">Computed</option><option value="audience">Audience</option></select>
    <${Z} collection=${e} address=${t} name="traits" params=${{class:n,limit:50}} title="Traits"
      render=${i=>d`<div class="table-wrap"><table><thead><tr><th scope="col">Key</th><th scope="col">Value</th>
        <th scope="col">Class</th><th scope="col">Updated</th></tr></thead><tbody>${i.map(o=>d`
        <tr><th scope="row" class="mono">${o.key}</th><td class="mono">${N(o.value)}</td><td>${o.class.replace("_"," ")}</td>
          <td>${k(o.updated)}</td></tr>`)}</tbody></table></div>`} />`}var Jt=e=>e?new Date(Date.parse(`${e}T00:00:00Z`)+864e5).toISOString().slice(0,10):"";function Kt({collection:e,address:t}){let[n,r]=b({include:"",exclude:"",start:"",end:"",sort:"desc"}),[i,o]=b(n),a=c=>s=>r({...n,[c]:s.target.value});return d`
    <h2>Events</h2>
    <form class="filters-form" onSubmit=${c=>{c.preventDefault(),o(n)}}>
      <label>Only events <input value=${n.include} onInput=${a("include")} placeholder="Signed Up, Order Completed" /></label>
      <label>Except <input value=${n.exclude} onInput=${a("exclude")} /></label>
      <label>From (UTC) <input type="date" value=${n.start} onInput=${a("start")} /></label>
      <label>Until (UTC, that day included) <input type="date" value=${n.end} onInput=${a("end")} /></label>
      <label>Order <select value=${n.sort} onChange=${a("sort")}><option value="desc">Newest first</option>
        <option value="asc">Oldest first</option></select></label>
      <button type="submit">Filter events</button>
    </form>
    <${Z} collection=${e} address=${t} name="events" params=${{...i,end:Jt(i.end),limit:20}} title="Events"
      render=${c=>d`<ol class="events">${c.map(s=>d`<li>
        <b>${s.event||s.type}</b> <span class="muted">${s.type} · ${k(s.timestamp)} · ${s.message_id}</span>
        <details><summary>Properties and context</summary><pre class="mono">${s.properties}</pre><pre class="mono">${s.context}</pre></details>
      </li>`)}</ol>`} />`}function ft({args:e}){let[t="users",n=""]=e,[r,i]=b({collection:t,address:n}),[o,a]=b(null);E(()=>{i({collection:t,address:n}),a(null)},[t,n]);let c=p=>{p.preventDefault(),location.hash=`#/profiles/${r.collection}/${encodeURIComponent(r.address.trim())}`},s=n!=="",u=z(()=>s?pt(t,n,"metadata"):Promise.resolve(null),[t,n]),l=(z(()=>I("/computations"),[]).data?.computations||[]).filter(p=>p.collection===t),_={collection:t,address:n};return d`
    <section aria-labelledby="profiles-title">
      <h1 id="profiles-title">Profile explorer</h1>
      <form class="lookup" onSubmit=${c} role="search">
        <label for="p-collection">Collection</label>
        <select id="p-collection" value=${r.collection} onChange=${p=>i({...r,collection:p.target.value})}>
          <option value="users">Users</option><option value="accounts">Accounts</option></select>
        <label for="p-address">Profile (type:value or prf_…)</label>
        <input id="p-address" value=${r.address} required placeholder="email:ada@example.com"
               onInput=${p=>i({...r,address:p.target.value})} />
        <button type="submit">Find</button>
      </form>
      ${s&&d`
        <${D} error=${u.error} />
        ${u.data&&d`
          <p class="profile-head">Profile <b class="mono">${u.data.profile_id}</b> · created ${k(u.data.created)} ·
            last message ${k(u.data.last_message)}${u.data.merged.length?` · merged from ${u.data.merged.join(", ")}`:""}</p>
          ${o&&d`<${ut} collection=${t} definitionKey=${o} address=${n} onClose=${()=>a(null)} />`}
          <div class="grid">
            <div>
              <h2>Audiences</h2>
              <${Z} ...${_} name="memberships" params=${{limit:50}} title="Audience memberships"
                render=${p=>d`<ul class="memberships">${p.map(m=>d`<li data-key=${m.key}>
                  <b>${m.name}</b> <span class="muted mono">${m.key}</span> · since ${k(m.entered)}
                  <button type="button" onClick=${()=>a(m.key)}>Why<span class="sr"> is this profile in ${m.key}</span></button></li>`)}</ul>`} />
              <form class="why-other" onSubmit=${p=>{p.preventDefault(),a(p.target.elements.other.value)}}>
                <label for="why-other">Explain any definition</label>
                <select id="why-other" name="other">${l.map(p=>d`<option value=${p.key}>${p.key}</option>`)}</select>
                <button type="submit" disabled=${!l.length}>Explain</button>
              </form>
              <h2>Membership history</h2>
              <${Z} ...${_} name="history" params=${{limit:20}} title="Membership history"
                render=${p=>d`<ol class="history">${p.map(m=>d`<li>
                  ${k(m.at)} · <b>${m.change}</b> ${m.key} <span class="mono muted">${N(m.old)} → ${N(m.new)}</span></li>`)}</ol>`} />
              <h2>Identifiers</h2>
              <${Z} ...${_} name="identifiers" params=${{limit:50}} title="Identifiers"
                render=${p=>d`<ul>${p.map(m=>d`<li class="mono">${m.type}:${m.value}
                  <span class="muted"> · ${k(m.added)}</span></li>`)}</ul>`} />
              <h2>Links</h2>
              <${Z} ...${_} name="links" params=${{limit:50}} title="Linked profiles"
                render=${p=>d`<ul>${p.map(m=>d`<li>
                  <a href=${`#/profiles/${m.collection}/${encodeURIComponent(m.id)}`}>${m.identifiers[0]||m.id}</a>
                  <span class="muted"> · ${m.collection} · linked ${k(m.linked)}</span></li>`)}</ul>`} />
            </div>
            <div>
              <${qt} ...${_} />
              <${Kt} ...${_} />
            </div>
          </div>`}`}
    </section>`}function _t(){let e=location.hash.replace(/^#\/?/,"").split("/").map(decodeURIComponent);return{page:e[0]||"audiences",args:e.slice(1)}}function Gt({onSession:e,reason:t}){let[n,r]=b(""),[i,o]=b(t||"");return d`
    <main class="signin">
      <h1>Audiences console</h1>
      <form onSubmit=${async c=>{c.preventDefault(),O.set(n.trim());try{e(await I("/session"))}catch(s){O.clear(),o(U(s))}}}>
        <label for="token">Token (admin, or read for read-only pages)</label>
        <input id="token" name="token" type="password" autocomplete="off" required value=${n}
               onInput=${c=>r(c.target.value)} />
        <button type="submit">Sign in</button>
      </form>
      <p class="muted">The token stays in this tab (sessionStorage) and is sent only to this server.</p>
      ${i&&d`<p class="notice error" role="alert">${i}</p>`}
    </main>`}var mt=[["audiences","Audiences & traits"],["builder","Builder"],["profiles","Profiles"],["destinations","Destinations"]];function Zt({session:e,onSignOut:t}){let[n,r]=b(_t());E(()=>{let s=()=>r(_t());return addEventListener("hashchange",s),()=>removeEventListener("hashchange",s)},[]);let{page:i,args:o}=n,a=q(!0);E(()=>{let s=(mt.find(([u])=>u===i)||[i,i])[1];if(document.title=`${s} · Audiences console`,a.current){a.current=!1;return}document.getElementById("main")?.focus()},[i,o.join("/")]);let c={audiences:()=>d`<${st} session=${e} />`,builder:()=>d`<${ct} session=${e} args=${o} key=${o.join("/")} />`,profiles:()=>d`<${ft} session=${e} args=${o} />`,destinations:()=>d`<${dt} session=${e} />`}[i];return d`
    <header class="top">
      <a class="skip" href="#main">Skip to content</a>
      <strong class="brand">Audiences</strong>
      <nav aria-label="Pages">
        ${mt.map(([s,u])=>d`
          <a href=${`#/${s==="builder"?"builder/new":s}`} aria-current=${i===s?"page":void 0}>${u}</a>`)}
      </nav>
      <span class="who">Space <b>${e.space}</b> · <span class="scope">${e.scope}</span> token</span>
      <button type="button" class="link" onClick=${t}>Sign out</button>
    </header>
    ${!e.can_write&&d`
      <p class="banner" role="note">Signed in with a read token: these pages are read-only, and the server refuses any change.</p>`}
    <main id="main" tabindex="-1">${c?c():d`<p role="alert">No page ${i}.</p>`}</main>`}function Xt(){let[e,t]=b(null),[n,r]=b(!!O.get()),[i,o]=b("");E(()=>{nt(c=>{O.clear(),t(null),o(U(c))}),O.get()&&I("/session").then(t,c=>o(U(c))).finally(()=>r(!1))},[]);let a=()=>{O.clear(),t(null),o("")};return n?d`<p>Checking the session…</p>`:e?d`<${Zt} session=${e} onSignOut=${a} />`:d`<${Gt} onSession=${t} reason=${i} />`}var ht=document.getElementById("app");ht.textContent="";ye(d`<${Xt} />`,ht);
